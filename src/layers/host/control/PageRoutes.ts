/**
 * The routes outside `/v1` and the login: probes (`/healthz`, `/readyz` with details only for an authorized
 * caller, `/metrics`, the OpenAPI document), the status page and its files, and sessions (token login,
 * logout, one-time login links and their exchange for the cookie).
 */
import { HttpApiBuilder, HttpServerResponse, OpenApi } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { NotFound } from "../../../services/host/ControlApiErrors.js"
import { ControlApiSpec, sessionCookieName } from "../../../services/host/ControlApiSpec.js"
import { hostReadiness } from "../../../services/host/ControlReadiness.js"
import { contentType as prometheusContentType } from "../../system/PrometheusText.js"
import type { ControlDependencies } from "./ControlDependencies.js"
import { hookSpecsOf } from "./HostRoutes.js"
import { checkRequest, clearedSessionCookie, cookieValue, isToken, sessionCookie, unauthorized } from "./RequestAuth.js"
import { type OpenedSession, sessionLifetimeMs } from "./Sessions.js"
import { pageHeaders } from "./SecurityHeaders.js"
import { readAsset } from "./StaticAssets.js"

/** The OpenAPI document of the control API, generated once from its declaration. */
export const controlOpenApi = OpenApi.fromApi(ControlApiSpec)

const loginRefusedPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Corral: login link refused</title></head>
<body><h1>This login link cannot be used</h1>
<p>It was used already or is older than 60 seconds. Run <code>corral open</code> for a new one, or log in with the token on <a href="/">the status page</a>.</p>
</body></html>
`

const sessionMaxAgeSec = Math.floor(sessionLifetimeMs / 1000)

const serveAsset = (deps: ControlDependencies, name: string) =>
  Effect.flatMap(readAsset(deps.assetsDir, name), Option.match({
    // Anyone may ask: the answer names no directory of this machine.
    onNone: () => Effect.fail(new NotFound({ message: `the status page has no file ${name}` })),
    onSome: (asset) => Effect.succeed(HttpServerResponse.uint8Array(asset.bytes, { contentType: asset.contentType, headers: pageHeaders }))
  }))

/** The probes group. */
export const probeRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "probes", (handlers) =>
    handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", ({ request }) =>
        Effect.gen(function*() {
          const server = yield* deps.server
          const detail = hostReadiness(yield* server.readiness, yield* deps.supervisor.list, hookSpecsOf(yield* deps.config))
          const authorized = yield* Effect.either(checkRequest(deps.credentials, request.method, request.url, request.headers))
          // Without credentials only the word: component ids, phases and errors are the operator's.
          const body = Either.isRight(authorized) ? detail : { status: detail.status }
          return HttpServerResponse.unsafeJson(body, { status: detail.ready ? 200 : 503, headers: { "cache-control": "no-store" } })
        }))
      .handle("metrics", () =>
        Effect.map(deps.metrics, (text) => HttpServerResponse.text(text, { contentType: prometheusContentType })))
      .handle("openapi", () => Effect.succeed(HttpServerResponse.unsafeJson(controlOpenApi))))

/** The status page group. */
export const pageRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "page", (handlers) =>
    handlers
      .handle("index", () => serveAsset(deps, "index.html"))
      .handle("asset", ({ path }) => serveAsset(deps, path.name)))

/** The session group. */
export const sessionRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "session", (handlers) =>
    handlers
      .handle("login", ({ payload }) =>
        isToken(payload.token.trim(), deps.credentials.token)
          ? Effect.map(deps.credentials.sessions.open, ({ id, key }) =>
            // The key goes in the body, for the page to keep: the cookie alone does not let a request in.
            HttpServerResponse.unsafeJson({ key }, {
              status: 200,
              headers: { "set-cookie": sessionCookie(id, sessionMaxAgeSec), "cache-control": "no-store" }
            }))
          : Effect.fail(unauthorized))
      .handle("logout", ({ request }) => {
        const id = cookieValue(request.headers["cookie"], sessionCookieName)
        return Effect.as(
          id === undefined ? Effect.void : deps.credentials.sessions.close(id),
          HttpServerResponse.empty({ status: 204, headers: { "set-cookie": clearedSessionCookie } })
        )
      })
      .handle("loginLink", () =>
        Effect.gen(function*() {
          const server = yield* deps.server
          const { code, expiresAtMs } = yield* deps.credentials.sessions.issueCode
          const base = server.address._tag === "Tcp" ? server.address.url : "http://127.0.0.1"
          return { url: `${base}/login?code=${encodeURIComponent(code)}`, expires_at: new Date(expiresAtMs).toISOString() }
        }))
      .handle("exchange", ({ urlParams }) =>
        Effect.map(
          urlParams.code === undefined ? Effect.succeed(Option.none<OpenedSession>()) : deps.credentials.sessions.redeem(urlParams.code),
          Option.match({
            onNone: () =>
              HttpServerResponse.text(loginRefusedPage, { status: 401, contentType: "text/html; charset=utf-8", headers: pageHeaders }),
            onSome: ({ id, key }) =>
              HttpServerResponse.empty({
                status: 303,
                // A fragment is never sent to a server (and Referrer-Policy is no-referrer): only the page reads it.
                headers: { location: `/#key=${key}`, "set-cookie": sessionCookie(id, sessionMaxAgeSec), "cache-control": "no-store" }
              })
          })
        )))
