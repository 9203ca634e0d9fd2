/**
 * The demo server's routes, written once and served through either interface: the bounded
 * handler (`demoHandler`) or a mounted `HttpRouter` (`demoHttpApp`).
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import type { Actor, ActorError } from "../../services/server/Actor.js"
import { BoundedResponse, type RequestHandler } from "../../services/server/BoundedHttp.js"
import type { BoundedServerShape } from "../../services/server/BoundedServer.js"
import { contentType as prometheusContentType, prometheusSnapshot } from "../system/PrometheusText.js"
import type { ResourcePressureMonitor } from "../system/ResourcePressure.js"

/** What the routes need: actor-owned state, the running server (for health), resource readings. */
export interface DemoDependencies {
  readonly counter: Actor<number>
  readonly server: Effect.Effect<BoundedServerShape>
  readonly pressure: ResourcePressureMonitor
}

/** Longest `/sleep` a client may ask for. */
const maxSleepMs = 600_000

const hello = BoundedResponse.json({ hello: "world" })

/** The routes, by method and path; `undefined` for an unknown route. */
const route = (
  deps: DemoDependencies,
  method: string,
  path: string,
  query: () => URLSearchParams
): Effect.Effect<BoundedResponse, ActorError> | undefined => {
  if (method !== "GET") return undefined
  switch (path) {
    case "/hello":
      return Effect.succeed(hello)
    case "/sleep": {
      const ms = Number(query().get("ms") ?? "0")
      if (!Number.isInteger(ms) || ms < 0 || ms > maxSleepMs) {
        return Effect.succeed(BoundedResponse.json({ error: "bad_request", message: `ms must be an integer from 0 to ${maxSleepMs}` }, 400))
      }
      return Effect.as(Effect.sleep(ms), BoundedResponse.json({ slept_ms: ms }))
    }
    case "/defect":
      return Effect.sync(() => {
        throw new Error("demo defect: this handler always throws")
      })
    case "/counter":
      return Effect.map(deps.counter.call((n) => [n + 1, n + 1] as const), (value) => BoundedResponse.json({ counter: value }))
    case "/healthz":
      return Effect.succeed(BoundedResponse.json({ status: "ok" }))
    case "/readyz":
      return Effect.flatMap(deps.server, (server) =>
        Effect.map(server.readiness, (readiness) => BoundedResponse.json(readiness, readiness.ready ? 200 : 503))
      )
    case "/metrics":
      return Effect.map(prometheusSnapshot, (text) => ({ status: 200, headers: { "content-type": prometheusContentType }, body: text }))
    case "/v1/runtime-metrics":
      return Effect.flatMap(deps.server, (server) =>
        Effect.map(Effect.all({ server: server.metrics, resource_pressure: deps.pressure.read }), (body) => BoundedResponse.json(body))
      )
    default:
      return undefined
  }
}

const notFound = (path: string) => BoundedResponse.json({ error: "not_found", path }, 404)

/** The routes through the bounded handler interface. */
export const demoHandler = (deps: DemoDependencies): RequestHandler<ActorError> => (request) =>
  route(deps, request.method, request.path, () => request.query) ?? Effect.succeed(notFound(request.path))

const toHttpServerResponse = (response: BoundedResponse): HttpServerResponse.HttpServerResponse => {
  const { "content-type": contentType, ...headers } = response.headers ?? {}
  const options = { status: response.status, headers, ...(contentType === undefined ? {} : { contentType }) }
  return typeof response.body === "string"
    ? HttpServerResponse.text(response.body, options)
    : response.body === undefined
      ? HttpServerResponse.empty(options)
      : HttpServerResponse.uint8Array(response.body, options)
}

const demoPaths = ["/hello", "/sleep", "/defect", "/counter", "/healthz", "/readyz", "/metrics", "/v1/runtime-metrics"] as const

/** The same routes as an `HttpRouter`. */
export const demoHttpApp = (deps: DemoDependencies): HttpRouter.HttpRouter<ActorError> =>
  demoPaths.reduce<HttpRouter.HttpRouter<ActorError>>(
    (router, path) =>
      HttpRouter.get(
        router,
        path,
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const query = () => {
            const q = request.url.indexOf("?")
            return new URLSearchParams(q === -1 ? "" : request.url.slice(q + 1))
          }
          return Effect.map(route(deps, "GET", path, query) ?? Effect.succeed(notFound(path)), toHttpServerResponse)
        })
      ),
    HttpRouter.empty
  )
