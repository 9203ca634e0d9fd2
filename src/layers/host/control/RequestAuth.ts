/**
 * Who may use the control API: a request with `Authorization: Bearer <run/control.token>` (the scheme in any
 * case), or one with a live session cookie and that session's page key in `X-Corral-Page` (any method, GET
 * too). The cookie alone is not enough: a browser sends it to every port of 127.0.0.1, so a server another
 * local user runs there would receive it; the key lives only in the status page's `sessionStorage`, which is
 * per origin (port included). `EventSource` cannot set headers, so `GET /v1/events` also takes `?page_key=`.
 * A page on another site cannot send the header without a CORS preflight the host never grants.
 */
import { timingSafeEqual } from "node:crypto"
import { Effect, Stream } from "effect"
import { Unauthorized } from "../../../services/host/ControlApiErrors.js"
import { pageHeaderName, sessionCookieName } from "../../../services/host/ControlApiSpec.js"
import type { SessionStore } from "./Sessions.js"

/** What decides a request's access: the host's token and its sessions. */
export interface ControlCredentials {
  readonly token: string
  readonly sessions: SessionStore
}

/** The headers auth reads, as node and the platform both give them (lower-case names). */
export type AuthHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

const single = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0]

/** The credentials of an `Authorization` header with the Bearer scheme, matched case-insensitively. */
export const bearerCredentials = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match?.[1]
}

/** Whether `given` is the token, compared in constant time. */
export const isToken = (given: string, token: string): boolean => {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The value of cookie `name` in a `Cookie` header. */
export const cookieValue = (header: string | undefined, name: string): string | undefined => {
  if (header === undefined) return undefined
  for (const part of header.split(";")) {
    const at = part.indexOf("=")
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim()
  }
  return undefined
}

/** The answer to a request without valid credentials. */
export const unauthorized = new Unauthorized({
  message: "send Authorization: Bearer <run/control.token> (the file in the host's data dir), or log in on the status page"
})

/** The answer to a session cookie without its page key (or with another's). */
export const pageKeyMissing = new Unauthorized({
  message: "the session cookie came without its page key (X-Corral-Page): log in again on the status page " +
    "(a new tab has no key), or send Authorization: Bearer <run/control.token>"
})

/** The one path whose page key may come as `?page_key=` (`EventSource` cannot set headers). */
export const pageKeyQueryPath = "/v1/events"

/** The page key a request carries: the `X-Corral-Page` header, else `?page_key=` on `GET /v1/events`. */
export const pageKeyOf = (method: string, url: string, headers: AuthHeaders): string | undefined => {
  const header = single(headers[pageHeaderName])
  if (header !== undefined && header.length > 0) return header
  const query = url.indexOf("?")
  if (method !== "GET" || query === -1 || url.slice(0, query) !== pageKeyQueryPath) return undefined
  return new URLSearchParams(url.slice(query + 1)).get("page_key") ?? undefined
}

/** Whether the request carries the token as a Bearer credential (compared in constant time); plain code, no Effect. */
export const carriesToken = (credentials: ControlCredentials, headers: AuthHeaders): boolean => {
  const given = bearerCredentials(single(headers["authorization"]))
  return given !== undefined && isToken(given, credentials.token)
}

/** Succeeds when the request carries the token as a Bearer credential. */
export const checkBearer = (credentials: ControlCredentials, headers: AuthHeaders): Effect.Effect<void, Unauthorized> =>
  carriesToken(credentials, headers) ? Effect.void : Effect.fail(unauthorized)

/** Whether the request carries a session cookie at all (else `checkSession` can only refuse it). */
export const carriesSessionCookie = (headers: AuthHeaders): boolean => {
  const id = cookieValue(single(headers["cookie"]), sessionCookieName)
  return id !== undefined && id.length > 0
}

/** Succeeds when the request carries a live session cookie and that session's page key. */
export const checkSession = (
  credentials: ControlCredentials,
  method: string,
  url: string,
  headers: AuthHeaders
): Effect.Effect<void, Unauthorized> => {
  const id = cookieValue(single(headers["cookie"]), sessionCookieName)
  if (id === undefined || id.length === 0) return Effect.fail(unauthorized)
  const key = pageKeyOf(method, url, headers)
  if (key === undefined) return Effect.fail(pageKeyMissing)
  return Effect.flatMap(credentials.sessions.isOpen(id, key), (open) => open ? Effect.void : Effect.fail(pageKeyMissing))
}

/** The token, else a session: the first that holds lets the request in. */
export const checkRequest = (
  credentials: ControlCredentials,
  method: string,
  url: string,
  headers: AuthHeaders
): Effect.Effect<void, Unauthorized> =>
  Effect.catchAll(checkBearer(credentials, headers), () => checkSession(credentials, method, url, headers))

/**
 * `stream`, for an authorized request: when the request came in on a session (not the token), it ends as
 * that session does, so a logout or an expiry also closes the event streams and log follows it opened.
 */
export const whileAuthorized = <A, E, R>(
  credentials: ControlCredentials,
  headers: AuthHeaders,
  stream: Stream.Stream<A, E, R>
): Stream.Stream<A, E, R> => {
  if (carriesToken(credentials, headers)) return stream
  const id = cookieValue(single(headers["cookie"]), sessionCookieName)
  return Stream.interruptWhen(stream, id === undefined ? Effect.void : credentials.sessions.ended(id))
}

/** `Set-Cookie` for a new session: HttpOnly, SameSite=Strict, Path=/, as long as the session. */
export const sessionCookie = (id: string, maxAgeSec: number): string =>
  `${sessionCookieName}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSec}`

/** `Set-Cookie` that clears the session cookie. */
export const clearedSessionCookie = `${sessionCookieName}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`
