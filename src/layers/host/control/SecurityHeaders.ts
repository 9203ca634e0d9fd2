/**
 * The browser-facing headers of the control API. Every answer is never cached (it holds the host's state),
 * never sniffed into another type, never framed, and sends no `Referer` onwards (the one-time code of
 * `/login?code=` must not leave in one); the status page's own files get a CSP that lets them load only
 * themselves and talk only to this origin.
 */
import { HttpServerResponse } from "@effect/platform"

const common = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer"
} as const

/** Headers of the status page and its files. */
export const pageHeaders = {
  ...common,
  "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
} as const

/** Headers of every other answer (JSON, text, event streams): nothing in them may run or load anything. */
export const answerHeaders = {
  ...common,
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'"
} as const

/** `response` with each of `answerHeaders` it does not set itself. */
export const withAnswerHeaders = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const missing = Object.entries(answerHeaders).filter(([name]) => response.headers[name] === undefined)
  return missing.length === 0 ? response : HttpServerResponse.setHeaders(response, Object.fromEntries(missing))
}
