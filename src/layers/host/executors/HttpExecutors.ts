/**
 * The two HTTP executors: `local_http_json` (a service the host does not run) and `http_local_json`
 * (supervised: routed only while ready or degraded, with the launch's token and the call's deadline).
 */
import { Clock, Effect } from "effect"
import type { ComponentRoute } from "../../../services/host/Component.js"
import { isRoutable } from "../../../services/host/Component.js"
import { ExecutorError, type Executor } from "../../../services/host/Executor.js"
import { ConfigError, defaultHttpConfig } from "../../../services/host/HostConfig.js"
import { MiddlewareDecision, type WorkflowEnvelope } from "../../../services/host/MiddlewareContract.js"
import { bearerHeaders, type CallHeaders, deadlineHeader, type ModuleClientShape } from "../../../services/host/ModuleClient.js"
import { type ExecutorComponent, bounded, decodeDecision, executorError, fromCallError, limitsOf } from "./ExecutorLimits.js"

/**
 * The headers of one invocation: its absolute deadline (now plus the sooner of the call's timeout and
 * the envelope's `deadline_ms`, in epoch ms), so the module drops work the host no longer waits for;
 * and, for a module the host launched, its run's token.
 */
const invocationHeaders = (timeoutMs: number, envelope: WorkflowEnvelope, token: string | null): Effect.Effect<CallHeaders> =>
  Effect.map(Clock.currentTimeMillis, (now) => ({
    ...(token === null ? {} : bearerHeaders(token)),
    [deadlineHeader]: String(now + Math.min(timeoutMs, envelope.deadline_ms ?? timeoutMs))
  }))

/**
 * POSTs an envelope to a component's `invoke_path`. No deadline of its own: the module client's timer
 * (`request_timeout_ms`) ends the call, so `bounded` is told the deadline is `"enforced"`.
 */
const invokerOverHttp = (component: ExecutorComponent, client: ModuleClientShape) => {
  // Per component, not per call.
  const invokePath = (component.http ?? defaultHttpConfig).invoke_path
  const limits = limitsOf(component)
  return (endpoint: string, token: string | null, envelope: WorkflowEnvelope): Effect.Effect<MiddlewareDecision, ExecutorError> =>
    invocationHeaders(limits.timeoutMs, envelope, token).pipe(
      Effect.flatMap((headers) => client.postJson(endpoint, invokePath, envelope, limits, headers)),
      Effect.mapError((error) => fromCallError(component.id, error)),
      Effect.flatMap((reply) => decodeDecision(component.id, reply.body))
    )
}

/** A `local_http_json` executor: POSTs the envelope to `http.invoke_path` at `http.endpoint`, a service the host does not run. */
export const makeLocalHttpExecutor = (
  component: ExecutorComponent,
  client: ModuleClientShape
): Effect.Effect<Executor, ConfigError> =>
  Effect.gen(function*() {
    const endpoint = component.http?.endpoint
    if (endpoint === undefined) {
      return yield* new ConfigError({
        file: "effective config",
        path: `components.${component.id}.http.endpoint`,
        reason: "a local_http_json component needs http.endpoint (e.g. http://127.0.0.1:47951)"
      })
    }
    const { timeoutMs } = limitsOf(component)
    const invokeOverHttp = invokerOverHttp(component, client)
    return yield* bounded(component.id, component.max_concurrency, timeoutMs, "enforced", (envelope) =>
      invokeOverHttp(endpoint, null, envelope))
  })

/**
 * An `http_local_json` executor: reads the component's route on every invocation; outside
 * `ready`/`degraded` (or without an endpoint) fails `NotReady` with the phase and makes no call.
 * Each call carries the token of the module's current run.
 * `onTimeout` runs after each invocation that timed out (the supervisor's streak toward `degraded`).
 */
export const makeSupervisedHttpExecutor = (
  component: ExecutorComponent,
  client: ModuleClientShape,
  route: Effect.Effect<ComponentRoute>,
  onTimeout?: Effect.Effect<void>
): Effect.Effect<Executor> => {
  const { timeoutMs } = limitsOf(component)
  const invokeOverHttp = invokerOverHttp(component, client)
  const attempt = (envelope: WorkflowEnvelope): Effect.Effect<MiddlewareDecision, ExecutorError> =>
    Effect.flatMap(route, ({ endpoint, phase, token }) =>
      !isRoutable(phase) || endpoint === null
        ? Effect.fail(executorError(component.id, "NotReady", `not routable in phase ${phase}${endpoint === null ? " (no endpoint)" : ""}`, phase))
        : invokeOverHttp(endpoint, token, envelope))
  return Effect.map(
    bounded(component.id, component.max_concurrency, timeoutMs, "enforced", attempt),
    (executor): Executor =>
      onTimeout === undefined ? executor : {
        component: executor.component,
        invoke: (envelope) =>
          Effect.tapError(executor.invoke(envelope), (error) => error.reason === "Timeout" ? onTimeout : Effect.void)
      }
  )
}
