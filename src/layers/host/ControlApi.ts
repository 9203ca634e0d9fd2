/**
 * The host's control API, served by a bounded server: `/healthz`, `/readyz` and `/metrics` are open;
 * every `/v1/*` route needs `Authorization: Bearer <run/control.token>`.
 */
import { timingSafeEqual } from "node:crypto"
import { Effect, Either, Option, Schema } from "effect"
import { exceedsJsonDepth, maxJsonDepth } from "../../services/system/JsonDepth.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"
import { contentType as prometheusContentType, prometheusSnapshot } from "../system/PrometheusText.js"
import type { ResourcePressureMonitor } from "../system/ResourcePressure.js"
import type { BoundedRequest, RequestHandler } from "../../services/server/BoundedHttp.js"
import { BoundedResponse } from "../../services/server/BoundedHttp.js"
import type { BoundedServerShape } from "../../services/server/BoundedServer.js"
import { WorkflowEnvelope } from "../../services/host/MiddlewareContract.js"
import type { HookRunnerShape } from "../../services/host/HookRunner.js"
import type { SupervisorShape } from "../../services/host/Supervisor.js"

/** What the control API serves. */
export interface ControlApiDependencies {
  readonly token: string
  readonly supervisor: SupervisorShape
  readonly hooks: HookRunnerShape
  /** The control server itself (for its readiness and metrics); resolved once it listens. */
  readonly server: Effect.Effect<BoundedServerShape>
  readonly pressure: ResourcePressureMonitor
  /** The broker's admin snapshot. */
  readonly broker: Effect.Effect<unknown>
  /**
   * Hook invocations run at once (`host.control.max_hook_invocations`), fewer than the server's
   * permits: hook traffic cannot take the capacity operator routes need.
   */
  readonly hookPermits: Effect.Semaphore
  /** Seconds a client refused for want of a hook permit is told to wait. */
  readonly retryAfterSeconds: number
}

const notFound = (what: string) => BoundedResponse.json({ error: "not_found", message: what }, 404)

const authorized = (request: BoundedRequest, token: string): boolean => {
  const header = request.headers.authorization
  if (typeof header !== "string" || !header.startsWith("Bearer ")) return false
  const given = Buffer.from(header.slice("Bearer ".length).trim())
  const expected = Buffer.from(token)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

const decodeEnvelope = Schema.decodeUnknownEither(WorkflowEnvelope, { errors: "all" })

/** The decoded segments of a path, or `undefined` when one is not valid percent-encoding. */
const pathSegments = (path: string): ReadonlyArray<string> | undefined => {
  const segments: Array<string> = []
  for (const segment of path.split("/")) {
    if (segment.length === 0) continue
    try {
      segments.push(decodeURIComponent(segment))
    } catch {
      return undefined
    }
  }
  return segments
}

const componentActions: ReadonlyArray<string> = ["start", "stop", "restart"]

/** Where every request outside the routes below is counted, so raw paths never become keys. */
export const unknownControlRoute = "(unknown)"

/**
 * The route template of a control API request (`/v1/components/{id}`), which route alarms and the
 * duration histogram key: ids and garbage paths never become keys, and unknown paths share one.
 */
export const controlRouteOf = (_method: string, path: string): string => {
  if (path === "/" || path === "/healthz" || path === "/readyz" || path === "/metrics") return path
  const parts = path.split("/").filter((part) => part.length > 0)
  if (parts[0] !== "v1") return unknownControlRoute
  if (parts[1] === "components") {
    if (parts.length === 2) return "/v1/components"
    if (parts.length === 3) return "/v1/components/{id}"
    const action = parts[3]
    if (parts.length === 4 && action !== undefined && componentActions.includes(action)) return `/v1/components/{id}/${action}`
  }
  if (parts[1] === "hooks" && parts.length === 4 && parts[3] === "invoke") return "/v1/hooks/{hook}/invoke"
  if (parts.length === 2 && (parts[1] === "broker" || parts[1] === "runtime-metrics")) return `/v1/${parts[1]}`
  return unknownControlRoute
}
/** The control API as a bounded-server handler. */
export const controlApi = (deps: ControlApiDependencies): RequestHandler => (request) => {
  const { method, path } = request
  if (method === "GET" && path === "/healthz") return Effect.succeed(BoundedResponse.json({ status: "ok" }))
  if (method === "GET" && path === "/readyz") return readiness(deps)
  if (method === "GET" && path === "/metrics") {
    return Effect.map(prometheusSnapshot, (text) => ({ status: 200, headers: { "content-type": prometheusContentType }, body: text }))
  }
  if (method === "GET" && path === "/") return status(deps)
  if (!path.startsWith("/v1/")) return Effect.succeed(notFound(`no route ${method} ${path}`))
  if (!authorized(request, deps.token)) {
    return Effect.succeed(
      BoundedResponse.json({ error: "unauthorized", message: "send Authorization: Bearer <run/control.token>" }, 401, {
        "www-authenticate": "Bearer"
      })
    )
  }
  const parts = pathSegments(path)
  if (parts === undefined) {
    return Effect.succeed(
      BoundedResponse.json({ error: "bad_path", message: `${path} is not valid percent-encoding: encode each path segment (encodeURIComponent)` }, 400)
    )
  }
  // parts[0] === "v1"
  if (method === "GET" && parts.length === 2 && parts[1] === "components") {
    return Effect.map(deps.supervisor.list, (components) => BoundedResponse.json({ components }))
  }
  if (parts.length >= 3 && parts[1] === "components") {
    const id = parts[2] ?? ""
    const action = parts[3]
    const run = method === "GET" && action === undefined
      ? deps.supervisor.get(id)
      : method === "POST" && parts.length === 4 && (action === "start" || action === "stop" || action === "restart")
      ? deps.supervisor[action](id)
      : undefined
    if (run === undefined) return Effect.succeed(notFound(`no route ${method} ${path}`))
    return run.pipe(
      Effect.map((component) => BoundedResponse.json(component)),
      Effect.catchTag("UnknownComponent", (error) => Effect.succeed(notFound(error.message)))
    )
  }
  if (method === "POST" && parts.length === 4 && parts[1] === "hooks" && parts[3] === "invoke") {
    return withHookPermit(deps, invokeHook(deps, parts[2] ?? "", request))
  }
  if (method === "GET" && parts.length === 2 && parts[1] === "broker") {
    return Effect.map(deps.broker, (snapshot) => BoundedResponse.json(snapshot))
  }
  if (method === "GET" && parts.length === 2 && parts[1] === "runtime-metrics") {
    return Effect.flatMap(deps.server, (server) =>
      Effect.map(Effect.all({ server: server.metrics, resource_pressure: deps.pressure.read }), (body) => BoundedResponse.json(body)))
  }
  return Effect.succeed(notFound(`no route ${method} ${path}`))
}

/** Runs a hook invocation under a hook permit, or answers 503 at once when none is free. */
const withHookPermit = <E, R>(deps: ControlApiDependencies, invocation: Effect.Effect<BoundedResponse, E, R>) =>
  Effect.map(
    deps.hookPermits.withPermitsIfAvailable(1)(invocation),
    Option.getOrElse(() =>
      BoundedResponse.json(
        { error: "hooks_busy", message: "every hook invocation permit is in use (host.control.max_hook_invocations); retry later" },
        503,
        { "retry-after": String(deps.retryAfterSeconds) }
      ))
  )

const invokeHook = (deps: ControlApiDependencies, hook: string, request: BoundedRequest) =>
  Effect.gen(function*() {
    if (!deps.hooks.names.includes(hook)) {
      return notFound(`no hook named ${hook} (configured: ${deps.hooks.names.join(", ") || "none"})`)
    }
    // Measured before it is parsed: a deeply nested envelope would overflow the stack further on.
    const text = yield* Effect.either(request.text)
    if (Either.isRight(text) && exceedsJsonDepth(text.right)) {
      return BoundedResponse.json({
        error: "too_deep",
        message: `the envelope nests deeper than ${maxJsonDepth} levels of arrays and objects; send at most ${maxJsonDepth}`
      }, 400)
    }
    const body = yield* Effect.either(request.json)
    if (Either.isLeft(body)) return BoundedResponse.json({ error: "bad_request", message: body.left.message }, 400)
    const withHook = typeof body.right === "object" && body.right !== null && !("hook" in body.right)
      ? { ...body.right, hook }
      : body.right
    const envelope = decodeEnvelope(withHook)
    if (Either.isLeft(envelope)) {
      return BoundedResponse.json({ error: "bad_envelope", message: `not a WorkflowEnvelope: ${parseIssueLines(envelope.left).join("; ")}` }, 400)
    }
    if (envelope.right.hook !== hook) {
      return BoundedResponse.json({ error: "bad_envelope", message: `envelope.hook is ${envelope.right.hook} but the route's hook is ${hook}` }, 400)
    }
    return yield* deps.hooks.invoke(hook, envelope.right).pipe(
      Effect.map((result) => BoundedResponse.json(result)),
      Effect.catchTag("UnknownHook", (error) => Effect.succeed(notFound(error.message)))
    )
  })

const readiness = (deps: ControlApiDependencies) =>
  Effect.gen(function*() {
    const server = yield* deps.server
    const own = yield* server.readiness
    const components = yield* deps.supervisor.list
    const notReady = components.filter((c) => c.phase === "failed" || c.phase === "starting" || c.phase === "stopping")
    const ready = own.ready && notReady.length === 0
    return BoundedResponse.json(
      {
        ready,
        draining: own.draining,
        alarmed_routes: own.alarmed_routes,
        components_not_ready: notReady.map((c) => ({ id: c.id, phase: c.phase, last_error: c.last_error }))
      },
      ready ? 200 : 503
    )
  })

const status = (deps: ControlApiDependencies) =>
  Effect.map(deps.supervisor.list, (components) =>
    BoundedResponse.text(
      [
        "corral host",
        "",
        ...components.map((c) => `${c.id.padEnd(28)} ${c.phase.padEnd(10)} pid ${String(c.pid ?? "-").padEnd(8)} ${c.last_error ?? ""}`),
        ""
      ].join("\n")
    ))
