/**
 * A supervised module's invocation that its module's restart explains: resent when that is safe,
 * otherwise `NotReady`, not `Unreachable`.
 *
 * The host holds the module's socket (`supervisor/HeldSocket`), so a call is never refused during a
 * restart; what a restart can still do to a call routed while the module was `ready`:
 * - The call waits in the socket's backlog and reaches the next launch, which refuses the old launch's
 *   token (a `Status` failure with `status` 401) before running anything. That call is resent once: when
 *   the component is routable again with a new token, within the call's own deadline (the rest of the
 *   hook's `deadline_ms`, or `request_timeout_ms` from the first attempt). If it is not routable again in
 *   time, the call fails `NotReady`.
 * - The process dies with the call on its connection (reset or closed before any answer: `Unreachable`).
 *   The process may have read and run it, and a POST is never sent twice: when the route shows the run
 *   ended (another token, or a phase that is not routable), the call fails as one made to a component
 *   that is not ready does, `NotReady`, with the phase and the original error. The host sees a dying
 *   process's connections close a few milliseconds before it has reaped the process and ended its run,
 *   so such a call waits up to `runEndWaitMs` for the route to change; if it does not, the error stands
 *   (a module unreachable while the host still counts it ready).
 */
import { Clock, Duration, Effect } from "effect"
import { type ComponentRoute, isRoutable } from "../../../services/host/Component.js"
import type { Executor, ExecutorError, HookDeadlinePassed } from "../../../services/host/Executor.js"
import type { MiddlewareDecision, WorkflowEnvelope } from "../../../services/host/MiddlewareContract.js"
import { executorError } from "./ExecutorLimits.js"

/** How long a call whose connection was lost (or whose token was refused) waits for its run's end to show in the route. */
export const runEndWaitMs = 250

/** How often the route is read meanwhile (only while a call waits on a restart). */
const routePollMs = 5

type Failure = ExecutorError | HookDeadlinePassed

/** The next launch refused the call's token: it ran nothing, so the call may be sent again. */
const tokenRefused = (error: Failure): error is ExecutorError =>
  error._tag === "ExecutorError" && error.reason === "Status" && error.status === 401

/** The connection was lost (or not made) with the call on it: the module may have run it. */
const connectionLost = (error: Failure): error is ExecutorError => error._tag === "ExecutorError" && error.reason === "Unreachable"

/** One attempt of the call, ended `withinMs` from now at the latest (`undefined`: the component's own limit). */
type Attempt = (withinMs: number | undefined) => Effect.Effect<MiddlewareDecision, Failure>

/**
 * `executor` whose invocations its module's restart explains are resent or fail `NotReady` (see the file
 * doc); `timeoutMs` is the component's `request_timeout_ms`, the bound of a call without a hook deadline.
 */
export const notReadyWhenRunEnded = (
  componentId: string,
  route: Effect.Effect<ComponentRoute>,
  executor: Executor,
  timeoutMs: number
): Executor => {
  const ended = (before: ComponentRoute, now: ComponentRoute): boolean => now.token !== before.token || !isRoutable(now.phase)
  const routableAgain = (before: ComponentRoute, now: ComponentRoute): boolean =>
    now.token !== before.token && isRoutable(now.phase) && now.endpoint !== null
  /** The route once `holds` of it, or as it is when `until` (Clock ms) comes; polled, so bounded. */
  const routeWhen = (holds: (now: ComponentRoute) => boolean, until: number): Effect.Effect<ComponentRoute> =>
    Effect.flatMap(route, (now) =>
      holds(now)
        ? Effect.succeed(now)
        : Effect.flatMap(Clock.currentTimeMillis, (at) =>
          at >= until ? Effect.succeed(now) : Effect.zipRight(Effect.sleep(Duration.millis(Math.min(routePollMs, until - at))), routeWhen(holds, until))))
  const notReady = (now: ComponentRoute, what: string, error: ExecutorError): ExecutorError =>
    executorError(componentId, "NotReady", `${what} (now ${now.phase}): ${error.message}`, now.phase)

  /** After a failure of a call routed as `before`: resend it (`resend` when it may still be) or relabel it. */
  const explain = (
    before: ComponentRoute,
    deadline: number,
    error: Failure,
    resend: ((withinMs: number) => Effect.Effect<MiddlewareDecision, Failure>) | undefined
  ): Effect.Effect<MiddlewareDecision, Failure> =>
    Effect.flatMap(Clock.currentTimeMillis, (at) => {
      if (connectionLost(error)) {
        return Effect.flatMap(routeWhen((now) => ended(before, now), Math.min(deadline, at + runEndWaitMs)), (now) =>
          Effect.fail(ended(before, now) ? notReady(now, "its module's run ended during the call", error) : error))
      }
      if (!tokenRefused(error)) return Effect.fail(error)
      // A 401 from the launch the call was routed to is the module's own answer, not a restart's.
      return Effect.flatMap(routeWhen((now) => ended(before, now), Math.min(deadline, at + runEndWaitMs)), (changed) =>
        !ended(before, changed)
          ? Effect.fail(error)
          : resend === undefined
          ? Effect.fail(notReady(changed, "its module restarted and refused the call's token again", error))
          : Effect.flatMap(routeWhen((now) => routableAgain(before, now), deadline), (now) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) =>
              routableAgain(before, now) && deadline - at > 0
                ? resend(deadline - at)
                : Effect.fail(notReady(now, "its module restarted and was not ready again within the call's deadline", error)))))
    })

  /** One call: an attempt, and after a restart at most one more (routed as the route is then). */
  const guarded = (attempt: Attempt, withinMs: number | undefined): Effect.Effect<MiddlewareDecision, Failure> =>
    Effect.flatMap(Clock.currentTimeMillis, (start) => {
      const deadline = start + (withinMs ?? timeoutMs)
      const once = (within: number | undefined, resend: ((withinMs: number) => Effect.Effect<MiddlewareDecision, Failure>) | undefined) =>
        Effect.flatMap(route, (before) => Effect.catchAll(attempt(within), (error) => explain(before, deadline, error, resend)))
      return once(withinMs, (rest) => once(rest, undefined))
    })

  const attemptOf = (envelope: WorkflowEnvelope): Attempt => {
    const { invokeWithin } = executor
    return invokeWithin === undefined ? () => executor.invoke(envelope) : (withinMs) => invokeWithin(envelope, withinMs)
  }
  return {
    component: executor.component,
    invoke: (envelope) =>
      Effect.catchTag(guarded(attemptOf(envelope), undefined), "HookDeadlinePassed", () =>
        // Only a resent call has a bound of its own here: what was left of request_timeout_ms.
        Effect.fail(executorError(componentId, "Timeout", `no decision within request_timeout_ms (${timeoutMs} ms), the call resent after its module's restart included`))),
    ...(executor.invokeWithin === undefined ? {} : { invokeWithin: (envelope, withinMs) => guarded(attemptOf(envelope), withinMs) })
  }
}
