/**
 * The host-wide `/v1` routes: the event stream and its recent events, hooks (list and invoke), the broker
 * snapshot, runtime metrics, reload and the redacted config.
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option, Schema, Stream } from "effect"
import { BadRequest, Busy, ConfigInvalid, NotFound } from "../../../services/host/ControlApiErrors.js"
import { ControlApiSpec } from "../../../services/host/ControlApiSpec.js"
import { hookSpec } from "../../../services/host/HookRunner.js"
import type { HostConfig } from "../../../services/host/HostConfig.js"
import { WorkflowEnvelope } from "../../../services/host/MiddlewareContract.js"
import { redactSecrets } from "../../../services/host/Redaction.js"
import { parseIssueLines } from "../../../services/system/ParseIssues.js"
import type { ControlDependencies } from "./ControlDependencies.js"
import { eventStream, resumeAfter } from "./EventStream.js"
import { whileAuthorized } from "./RequestAuth.js"
import { busyResponse } from "./Responses.js"

/** Events `GET /v1/events/recent` returns when the client names no limit. */
export const defaultRecentEvents = 100

/** The hooks of a config, as `GET /v1/hooks` and readiness see them. */
export const hookSpecsOf = (config: HostConfig) => Object.entries(config.hooks).map(([name, hook]) => hookSpec(name, hook))

const decodeEnvelope = Schema.decodeUnknownEither(WorkflowEnvelope, { errors: "all" })

/** The events group of the control API. */
export const eventRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "events", (handlers) =>
    handlers
      .handle("stream", ({ headers, request, urlParams }) => {
        if (!deps.streamPermits.holdUntilClosed(request)) return Effect.succeed(busyResponse(deps, "streams_busy"))
        const after = resumeAfter(headers["last-event-id"], urlParams.last_event_id)
        const stream = whileAuthorized(
          deps.credentials,
          request.headers,
          eventStream(deps.events, after, { heartbeatMs: deps.timing.heartbeatMs, maxMs: deps.timing.maxStreamMs })
        )
        return Effect.succeed(HttpServerResponse.stream(Stream.encodeText(stream), {
          contentType: "text/event-stream",
          // No buffering on the way: each event is one write, and proxies must pass it on at once.
          headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
        }))
      })
      .handle("recent", ({ urlParams }) =>
        Effect.map(deps.events.recent(urlParams.limit ?? defaultRecentEvents), (events) => ({ events }))))

/** The hooks group: the hooks now, and the `HttpApi` path of an invocation (the served one is the lean handler in ControlApi.ts). */
export const hookRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "hooks", (handlers) =>
    handlers
      .handle("list", () =>
        Effect.map(deps.config, (config) => ({
          hooks: hookSpecsOf(config).map((spec) => ({ name: spec.name, components: spec.components, failure_policy: spec.failurePolicy }))
        })))
      .handle("invoke", ({ path, payload }) =>
        Effect.gen(function*() {
          const envelope = decodeEnvelope({ ...payload, hook: payload.hook ?? path.hook })
          if (Either.isLeft(envelope)) {
            return yield* Effect.fail(new BadRequest({ error: "bad_envelope", message: `not a WorkflowEnvelope: ${parseIssueLines(envelope.left).join("; ")}` }))
          }
          if (envelope.right.hook !== path.hook) {
            return yield* Effect.fail(new BadRequest({ error: "bad_envelope", message: `envelope.hook is ${envelope.right.hook} but the route's hook is ${path.hook}` }))
          }
          const result = yield* deps.hookPermits.withPermitIfAvailable(deps.hooks.invoke(path.hook, envelope.right)).pipe(
            Effect.mapError((error) => new NotFound({ message: error.message }))
          )
          return yield* Option.match(result, {
            onNone: () => Effect.fail(new Busy({ error: "hooks_busy", message: "every hook invocation permit is in use; retry later" })),
            onSome: Effect.succeed
          })
        })))

/** The host group: broker, runtime metrics, reload, config. */
export const hostRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "host", (handlers) =>
    handlers
      .handle("broker", () => deps.broker)
      .handle("runtimeMetrics", () =>
        Effect.flatMap(deps.server, (server) => Effect.all({ server: server.metrics, resource_pressure: deps.pressure.read })))
      .handle("reload", () =>
        deps.reload.reload.pipe(
          Effect.catchTag("ReloadRefused", (refused) =>
            Effect.fail(new ConfigInvalid({
              message: `the config has ${refused.problems.length} problem(s); nothing was changed: fix them and reload again`,
              problems: refused.problems
            })))
        ))
      .handle("config", () =>
        Effect.all({ config: Effect.map(deps.config, redactSecrets), sources: deps.configSources })))
