/**
 * The two HTTP executors: `local_http_json` (a service the host does not run) and `http_local_json`
 * (supervised: routed only while ready or degraded, with the launch's token and the call's deadline).
 *
 * With the real module client an invocation is one `Effect.async` around the client's callback form
 * (`postJsonDirect`): the permit, the headers, the call, the decode and the error mapping are plain code
 * in that one step, and the call's own timer (`request_timeout_ms`, or the rest of the hook's deadline
 * when that is sooner) is the only deadline. A client without the callback form (a scripted test client)
 * is called through `postJson`.
 */
import { Clock, Effect, Either } from "effect"
import type { ComponentRoute } from "../../../services/host/Component.js"
import { isRoutable } from "../../../services/host/Component.js"
import { type Executor, ExecutorError, HookDeadlinePassed } from "../../../services/host/Executor.js"
import { ConfigError, defaultHttpConfig } from "../../../services/host/HostConfig.js"
import type { MiddlewareDecision, WorkflowEnvelope } from "../../../services/host/MiddlewareContract.js"
import {
  bearerHeaders,
  type CallHeaders,
  deadlineHeader,
  type ModuleCallError,
  type ModuleClientShape
} from "../../../services/host/ModuleClient.js"
import {
  boundedBy,
  busyError,
  ConcurrencyPermits,
  decodeDecision,
  type ExecutorComponent,
  executorError,
  fromCallError,
  limitsOf
} from "./ExecutorLimits.js"
import { notReadyWhenRunEnded } from "./RunEnded.js"

/**
 * The headers of one invocation: its absolute deadline (now plus the sooner of the call's timeout and
 * the envelope's `deadline_ms`, in epoch ms), so the module drops work the host no longer waits for;
 * and, for a module the host launched, its run's token.
 */
const invocationHeaders = (nowMs: number, timeoutMs: number, envelope: WorkflowEnvelope, token: string | null): CallHeaders => ({
  ...(token === null ? {} : bearerHeaders(token)),
  [deadlineHeader]: String(nowMs + Math.min(timeoutMs, envelope.deadline_ms ?? timeoutMs))
})

/** `fromCallError`, keeping the status the module answered (`RunEnded` tells a refused token by it). */
const callFailed = (componentId: string, error: ModuleCallError): ExecutorError => {
  const failed = fromCallError(componentId, error)
  return error.status === undefined || failed.reason !== "Status"
    ? failed
    : new ExecutorError({ component: failed.component, reason: failed.reason, status: error.status, message: failed.message })
}

/** One invocation of a component at `endpoint` with `token`, ended `withinMs` from now at the latest. */
type HttpCall = (
  endpoint: string,
  token: string | null,
  envelope: WorkflowEnvelope,
  withinMs: number | undefined
) => Effect.Effect<MiddlewareDecision, ExecutorError | HookDeadlinePassed>

/**
 * POSTs an envelope to a component's `invoke_path` through the client's callback form, holding one of
 * `permits` for the call (`Busy` when none is free). No deadline of its own: the call's timer ends it at
 * `request_timeout_ms`, or at `withinMs` when that is sooner (then `HookDeadlinePassed`).
 */
const directCall = (
  component: ExecutorComponent,
  post: NonNullable<ModuleClientShape["postJsonDirect"]>,
  permits: ConcurrencyPermits
): HttpCall => {
  // Per component, not per call.
  const invokePath = (component.http ?? defaultHttpConfig).invoke_path
  const limits = limitsOf(component)
  const busy = busyError(component.id, permits.max)
  return (endpoint, token, envelope, withinMs) =>
    Effect.async<MiddlewareDecision, ExecutorError | HookDeadlinePassed>((resume) => {
      if (!permits.tryTake()) return resume(Either.left(busy))
      let held = true
      const release = (): void => {
        if (held) permits.release()
        held = false
      }
      const byHook = withinMs !== undefined && withinMs < limits.timeoutMs
      const callLimits = byHook ? { timeoutMs: Math.max(1, withinMs), maxResponseBytes: limits.maxResponseBytes } : limits
      // Wall-clock time: the module compares the deadline with its own clock. The call's own bound (a resent
      // call has only what was left of the first attempt's), so the module drops it when the host gives up.
      const headers = invocationHeaders(Date.now(), callLimits.timeoutMs, envelope, token)
      try {
        const cancel = post(endpoint, invokePath, envelope, callLimits, headers, (result) => {
          release()
          if (Either.isRight(result)) return resume(decodeDecision(component.id, result.right.body))
          const error = result.left
          resume(Either.left(byHook && error.reason === "Timeout" ? new HookDeadlinePassed() : callFailed(component.id, error)))
        })
        return Effect.sync(() => {
          release()
          cancel()
        })
      } catch (defect) {
        // Encoding the envelope threw (a value JSON cannot carry): a defect, as it was inside an Effect.
        release()
        resume(Effect.die(defect))
      }
    })
}

/** The same invocation through `postJson`, for a client without the callback form; `bounded` holds the permit. */
const effectCall = (component: ExecutorComponent, client: ModuleClientShape) => {
  const invokePath = (component.http ?? defaultHttpConfig).invoke_path
  const limits = limitsOf(component)
  return (endpoint: string, token: string | null, envelope: WorkflowEnvelope): Effect.Effect<MiddlewareDecision, ExecutorError> =>
    Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) => client.postJson(endpoint, invokePath, envelope, limits, invocationHeaders(now, limits.timeoutMs, envelope, token))),
      Effect.mapError((error) => callFailed(component.id, error)),
      Effect.flatMap((reply) => decodeDecision(component.id, reply.body))
    )
}

/**
 * The executor of an HTTP component whose every invocation goes to `target(envelope)` (an endpoint and
 * token, or an `ExecutorError` when it may not be called now, checked after the permit as `bounded` does).
 */
const httpExecutor = (
  component: ExecutorComponent,
  client: ModuleClientShape,
  target: Effect.Effect<Either.Either<{ readonly endpoint: string; readonly token: string | null }, ExecutorError>>
): Executor => {
  const permits = new ConcurrencyPermits(component.max_concurrency)
  const post = client.postJsonDirect
  if (post === undefined) {
    const call = effectCall(component, client)
    return boundedBy(component.id, permits, limitsOf(component).timeoutMs, "enforced", (envelope) =>
      Effect.flatMap(target, (routed) => Either.isLeft(routed) ? Either.left(routed.left) : call(routed.right.endpoint, routed.right.token, envelope)))
  }
  const call = directCall(component, post, permits)
  const busy = busyError(component.id, permits.max)
  const invokeWithin = (envelope: WorkflowEnvelope, withinMs: number | undefined) =>
    Effect.flatMap(target, (routed) =>
      Either.isLeft(routed)
        // The permit is checked first on every path: a component with none free is Busy, whatever its phase.
        ? Either.left(permits.available ? routed.left : busy)
        : call(routed.right.endpoint, routed.right.token, envelope, withinMs))
  return {
    component: component.id,
    invoke: (envelope) =>
      Effect.catchTag(invokeWithin(envelope, undefined), "HookDeadlinePassed", () =>
        // Not reachable: without `withinMs` only the component's own limit ends the call.
        Effect.fail(executorError(component.id, "Timeout", "the hook's deadline passed"))),
    invokeWithin
  }
}

/** A `local_http_json` executor: POSTs the envelope to `http.invoke_path` at `http.endpoint`, a service the host does not run. */
export const makeLocalHttpExecutor = (
  component: ExecutorComponent,
  client: ModuleClientShape
): Effect.Effect<Executor, ConfigError> => {
  const endpoint = component.http?.endpoint
  if (endpoint === undefined) {
    return Effect.fail(
      new ConfigError({
        file: "effective config",
        path: `components.${component.id}.http.endpoint`,
        reason: "a local_http_json component needs http.endpoint (e.g. http://127.0.0.1:47951)"
      })
    )
  }
  return Effect.succeed(httpExecutor(component, client, Effect.succeed(Either.right({ endpoint, token: null }))))
}

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
): Effect.Effect<Executor> =>
  Effect.sync(() => {
    const target = Effect.map(route, ({ endpoint, phase, token }) =>
      !isRoutable(phase) || endpoint === null
        ? Either.left(executorError(component.id, "NotReady", `not routable in phase ${phase}${endpoint === null ? " (no endpoint)" : ""}`, phase))
        : Either.right({ endpoint, token }))
    // A call its module's restart explains is resent when the next launch refused its token, else fails
    // NotReady, as one made a moment later would (RunEnded).
    const executor = notReadyWhenRunEnded(component.id, route, httpExecutor(component, client, target), limitsOf(component).timeoutMs)
    if (onTimeout === undefined) return executor
    const reportTimeout = (error: ExecutorError | HookDeadlinePassed) =>
      error._tag === "ExecutorError" && error.reason === "Timeout" ? onTimeout : Effect.void
    const { invokeWithin } = executor
    return {
      component: executor.component,
      invoke: (envelope) => Effect.tapError(executor.invoke(envelope), reportTimeout),
      ...(invokeWithin === undefined ? {} : { invokeWithin: (envelope, withinMs) => Effect.tapError(invokeWithin(envelope, withinMs), reportTimeout) })
    }
  })
