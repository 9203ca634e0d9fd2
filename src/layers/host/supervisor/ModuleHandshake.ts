/**
 * The start of a module's run: poll its ready path until 200 (within `startup_timeout_ms`, giving up
 * early if the process exits), then `middleware-init`, then the module report, validated and checked
 * for compatibility. Every way it fails is a `ComponentFailure` with its reason.
 */
import { Duration, Effect, Schedule, Schema, SubscriptionRef } from "effect"
import type { HttpConfig } from "../../../services/host/HostConfig.js"
import { makeMiddlewareInit, ModuleReport, reportIncompatibility } from "../../../services/host/MiddlewareContract.js"
import { bearerHeaders, type ModuleClientShape } from "../../../services/host/ModuleClient.js"
import { type ChildHandle, describeExit } from "../../../services/host/ProcessLauncher.js"
import { ComponentFailure, type ComponentFailureReason } from "../../../services/host/Supervisor.js"
import type { Managed } from "./ComponentState.js"
import type { Transitions } from "./Transitions.js"

const failure = (managed: Managed, reason: ComponentFailureReason, detail: string) =>
  new ComponentFailure({ component: managed.id, reason, detail })

/** Polls the ready path until 200, within `startup_timeout_ms`, giving up early if the child exits. */
export const awaitReady = (
  client: ModuleClientShape,
  transitions: Transitions,
  managed: Managed,
  http: HttpConfig,
  endpoint: string,
  child: ChildHandle
): Effect.Effect<void, ComponentFailure> => {
  const startupMs = http.startup_timeout_ms
  // Probing is cheap (a refused loopback connect), and its interval adds to every (re)start.
  const pollMs = Math.max(1, Math.min(15, Math.floor(startupMs / 50)))
  const record = (ok: boolean, detail: string) =>
    Effect.flatMap(transitions.probe(ok, detail), (probe) => SubscriptionRef.update(managed.state, (s) => ({ ...s, lastReadiness: probe })))
  const once = client.get(endpoint, http.ready_path, { timeoutMs: Math.min(1_000, startupMs), maxResponseBytes: 65_536 }).pipe(
    Effect.map((reply) => reply.status === 200 ? "200" : `ready path answered ${reply.status}`),
    Effect.catchAll((error) => Effect.succeed(error.message)),
    Effect.flatMap((detail) => Effect.as(record(detail === "200", detail), detail === "200"))
  )
  const polled = Effect.repeat(once, { schedule: Schedule.spaced(Duration.millis(pollMs)), until: (ready) => ready })
  return Effect.raceFirst(
    polled.pipe(
      Effect.timeoutFail({
        duration: Duration.millis(startupMs),
        onTimeout: () => failure(managed, "NotReady", `not ready within startup_timeout_ms (${startupMs} ms)`)
      })
    ),
    Effect.flatMap(child.exit, (exit) =>
      Effect.fail(failure(managed, "ExitedEarly", `the process ${describeExit(exit)} before it was ready`)))
  )
}

/** `middleware-init` with the module's config subtree (sent with the run's token), then the module report, validated and checked. */
export const initialize = (
  client: ModuleClientShape,
  managed: Managed,
  http: HttpConfig,
  endpoint: string,
  token: string,
  moduleConfig: unknown
): Effect.Effect<ModuleReport, ComponentFailure> => {
  const moduleId = managed.config.module_id ?? managed.id
  const init = makeMiddlewareInit(managed.id, moduleId, moduleConfig)
  return client.postJson(endpoint, http.init_path, init, {
    timeoutMs: http.request_timeout_ms,
    maxResponseBytes: http.max_response_bytes
  }, bearerHeaders(token)).pipe(
    Effect.mapError((error) => failure(managed, "InitFailed", `middleware-init failed: ${error.message}`)),
    Effect.flatMap((reply) =>
      Schema.decodeUnknown(ModuleReport)(reply.body).pipe(
        Effect.mapError((error) => failure(managed, "BadReport", `module report is invalid: ${error.message}`))
      )
    ),
    Effect.flatMap((report) => {
      const incompatible = reportIncompatibility(report)
      return incompatible === undefined
        ? Effect.succeed(report)
        : Effect.fail(failure(managed, "IncompatibleContract", `incompatible module: ${incompatible}`))
    })
  )
}
