/**
 * The control API as one `HttpApp`, built from its `HttpApi` declaration and the route groups, wrapped so
 * that what the router alone would answer badly follows the contract: a path that is not valid
 * percent-encoding is 400 `bad_path`, an unknown method on a declared path is 405 with `Allow` (methods
 * read from the same declaration), an unknown path is a JSON 404, a body or parameter that does not decode is
 * 400 `{error: "bad_request", message}` naming the field (never a 500), every 401 says `WWW-Authenticate:
 * Bearer`, a `Host` that is not loopback is refused (DNS rebinding), and every answer has the security headers.
 */
import { HttpApiBuilder, type HttpApp, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Effect, Layer, Option, Schema } from "effect"
import type { Scope } from "effect"
import { ControlApiSpec } from "../../../services/host/ControlApiSpec.js"
import { ControlAuthLive, MetricsAuthLive } from "./AuthMiddleware.js"
import { componentRoutes } from "./ComponentRoutes.js"
import type { ControlDependencies } from "./ControlDependencies.js"
import { badHost, isLoopbackHostHeader } from "./HostHeader.js"
import { eventRoutes, hookRoutes, hostRoutes } from "./HostRoutes.js"
import { controlOpenApi, pageRoutes, probeRoutes, sessionRoutes } from "./PageRoutes.js"
import { errorResponse } from "./Responses.js"
import { withAnswerHeaders } from "./SecurityHeaders.js"

/** A declared path as a matcher, with the methods it answers. */
interface DeclaredPath {
  /** As the OpenAPI document writes it (`/v1/components/{id}`): the route's metric and alarm key. */
  readonly template: string
  readonly pattern: RegExp
  readonly methods: ReadonlyArray<string>
}

/** Every path of the OpenAPI document (so of the declaration), `{param}` matching one segment. */
export const declaredPaths: ReadonlyArray<DeclaredPath> = Object.entries(controlOpenApi.paths).map(([template, item]) => {
  const source = template.split("/").map((segment) => /^\{.+\}$/.test(segment) ? "[^/]+" : segment.replace(/[.*+?^$()|[\]\\]/g, "\\$&"))
  const methods = Object.keys(item).filter((key) => ["get", "post", "put", "patch", "delete"].includes(key)).map((key) => key.toUpperCase())
  return { template, pattern: new RegExp(`^${source.join("/")}$`), methods: methods.includes("GET") ? [...methods, "HEAD"] : methods }
})

/** The methods `path` answers; empty when no declared path matches. */
export const allowedMethods = (path: string): ReadonlyArray<string> =>
  declaredPaths.filter((declared) => declared.pattern.test(path)).flatMap((declared) => declared.methods)

/** Whether every segment of `path` is valid percent-encoding. */
const decodablePath = (path: string): boolean => {
  try {
    decodeURIComponent(path)
    return true
  } catch {
    return false
  }
}

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** The answer to a request no route took: 405 with `Allow` on a declared path, else a JSON 404. */
const unrouted = (method: string, path: string): HttpServerResponse.HttpServerResponse => {
  const allowed = allowedMethods(path)
  return allowed.length > 0
    ? errorResponse(405, "method_not_allowed", `${path} answers ${allowed.join(", ")}, not ${method}`, { allow: allowed.join(", ") })
    : errorResponse(404, "not_found", `no route ${method} ${path}; GET /v1/openapi.json lists the routes`)
}

const isRouteNotFound = (cause: Cause.Cause<unknown>): boolean =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => false,
    onSome: (error) => HttpServerError.isServerError(error) && error._tag === "RouteNotFound"
  })

/** A body the platform could not read as its content type says (it dies with it): the client's error, not a defect. */
const isUnreadableBody = (cause: Cause.Cause<unknown>): boolean =>
  Option.match(Cause.dieOption(cause), {
    onNone: () => false,
    onSome: (defect) => HttpServerError.isServerError(defect) && defect._tag === "RequestError"
  })

interface DecodeIssue {
  readonly path: ReadonlyArray<unknown>
  readonly message: string
}

const DecodeErrorBody = Schema.parseJson(Schema.Struct({
  _tag: Schema.Literal("HttpApiDecodeError"),
  issues: Schema.Array(Schema.Struct({ path: Schema.Array(Schema.Unknown), message: Schema.String }))
}))
const decodeErrorBody = Schema.decodeUnknownOption(DecodeErrorBody)

const fieldOf = (issue: DecodeIssue): string => issue.path.join(".") || "(body)"

/**
 * The issues worth reading: an optional field that does not decode also reports the other arm of its
 * union ("Expected undefined, actual ..."), which says nothing to the client.
 */
const tellingIssues = (issues: ReadonlyArray<DecodeIssue>): ReadonlyArray<DecodeIssue> =>
  issues.filter((issue) =>
    !(issue.message.startsWith("Expected undefined") &&
      issues.some((other) => other !== issue && fieldOf(other) === fieldOf(issue)))
  )

/**
 * The platform's 400 for a parameter or body that does not match its schema, as the contract's
 * `{error: "bad_request", message}` with a one-line message naming each field (the OpenAPI document says
 * the same: see `ControlApiSpec`).
 */
const withErrorCode = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status !== 400 || response.body._tag !== "Uint8Array") return response
  const decoded = decodeErrorBody(new TextDecoder().decode(response.body.body))
  if (Option.isNone(decoded)) return response
  const message = tellingIssues(decoded.value.issues).map((issue) => `${fieldOf(issue)}: ${issue.message}`).join("; ")
  return errorResponse(400, "bad_request", message)
}

/** The control API's app for `deps`, its routes built for the life of the scope. */
export const makeControlApp = (deps: ControlDependencies): Effect.Effect<HttpApp.Default, never, Scope.Scope> =>
  Effect.gen(function*() {
    const groups = Layer.mergeAll(
      probeRoutes(deps),
      pageRoutes(deps),
      sessionRoutes(deps),
      componentRoutes(deps),
      eventRoutes(deps),
      hookRoutes(deps),
      hostRoutes(deps)
    ).pipe(Layer.provide(Layer.merge(ControlAuthLive(deps.credentials), MetricsAuthLive(deps.credentials, deps.config))))
    const api = Layer.mergeAll(HttpApiBuilder.api(ControlApiSpec).pipe(Layer.provide(groups)), HttpApiBuilder.Middleware.layer).pipe(
      Layer.provideMerge(HttpApiBuilder.Router.Live)
    )
    const context = yield* Layer.build(Layer.merge(api, NodeHttpServer.layerContext))
    const routed = Effect.provide(yield* Effect.provide(HttpApiBuilder.httpApp, context), context)
    const answer = (request: HttpServerRequest.HttpServerRequest) => {
      if (!isLoopbackHostHeader(request.headers["host"])) return Effect.succeed(errorResponse(403, badHost.error, badHost.message))
      const path = pathOf(request.url)
      if (!decodablePath(path)) {
        return Effect.succeed(errorResponse(400, "bad_path", `${path} is not valid percent-encoding: encode each path segment (encodeURIComponent)`))
      }
      return routed.pipe(
        Effect.catchAllCause((cause) =>
          isRouteNotFound(cause)
            ? Effect.succeed(unrouted(request.method, path))
            : isUnreadableBody(cause)
            ? Effect.succeed(errorResponse(400, "bad_request", "the body is not what its Content-Type says (send JSON with application/json)"))
            : Effect.failCause(cause)),
        Effect.map((response) =>
          response.status === 401 ? HttpServerResponse.setHeader(response, "www-authenticate", "Bearer") : withErrorCode(response))
      )
    }
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => Effect.map(answer(request), withAnswerHeaders))
  })
