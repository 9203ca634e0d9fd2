/**
 * The host's control API, served by a bounded server: `/healthz`, `/readyz` and `/metrics` are open;
 * every `/v1/*` route needs `Authorization: Bearer <run/control.token>`.
 */
import { timingSafeEqual } from "node:crypto"
import { Effect, Either, Schema } from "effect"
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
  const parts = path.split("/").filter((part) => part.length > 0).map(decodeURIComponent)
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
    return invokeHook(deps, parts[2] ?? "", request)
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

const invokeHook = (deps: ControlApiDependencies, hook: string, request: BoundedRequest) =>
  Effect.gen(function*() {
    if (!deps.hooks.names.includes(hook)) {
      return notFound(`no hook named ${hook} (configured: ${deps.hooks.names.join(", ") || "none"})`)
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
