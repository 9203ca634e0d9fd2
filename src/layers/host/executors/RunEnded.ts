/**
 * A supervised module's invocation that its module's restart explains is `NotReady`, not `Unreachable`.
 *
 * The host holds the module's socket (`supervisor/HeldSocket`), so a call is never refused during a
 * restart; what a restart can still do to a call routed while the module was `ready`: the process dies
 * with the call on its connection (reset or closed before any answer, `Unreachable`), or the call waits
 * in the socket's backlog and reaches the next launch, which refuses the old launch's token (401,
 * `Status`). When the component's route has changed since the call was routed (another token: a new
 * run; or a phase that is not routable), the call was in fact made to a component that is no longer
 * ready, and it fails as such a call does: `NotReady`, with the phase and the original error. Otherwise
 * the error stands (a module that is unreachable while the host still counts it ready). The host sees a
 * dying process's connections close a few milliseconds before it has reaped the process and ended its
 * run, so a connection lost mid-call waits up to `runEndWaitMs` for the route to change.
 */
import { Duration, Effect } from "effect"
import { type ComponentRoute, isRoutable } from "../../../services/host/Component.js"
import type { Executor, ExecutorError, HookDeadlinePassed } from "../../../services/host/Executor.js"
import type { MiddlewareDecision } from "../../../services/host/MiddlewareContract.js"
import { executorError } from "./ExecutorLimits.js"

/** The module client's wording of a 401 answer (`POST …: answered 401: …`). */
const answered401 = /: answered 401: /

/** How long a call whose connection was lost waits for its run's end to show in the route. */
export const runEndWaitMs = 250

/** How often the route is read meanwhile. */
const runEndPollMs = 5

/** The module client's wording of a connection lost with the call on it (not a refused connect). */
const connectionLost = /socket hang up|ECONNRESET|EPIPE/

/** A failure a restart of the module explains: the connection was lost, or the next launch refused the old token. */
const lostToRestart = (error: ExecutorError | HookDeadlinePassed): error is ExecutorError =>
  error._tag === "ExecutorError" && (error.reason === "Unreachable" || (error.reason === "Status" && answered401.test(error.message)))

/** `executor` whose invocations fail `NotReady` when their module's run ended under them (see the file doc). */
export const notReadyWhenRunEnded = (componentId: string, route: Effect.Effect<ComponentRoute>, executor: Executor): Executor => {
  const ended = (before: ComponentRoute, now: ComponentRoute): boolean => now.token !== before.token || !isRoutable(now.phase)
  /** The route once it shows the run ended, or as it is after `waitMs` (polled, so bounded). */
  const routeAfter = (before: ComponentRoute, waitMs: number): Effect.Effect<ComponentRoute> =>
    Effect.flatMap(route, (now) =>
      ended(before, now) || waitMs <= 0
        ? Effect.succeed(now)
        : Effect.zipRight(Effect.sleep(Duration.millis(runEndPollMs)), routeAfter(before, waitMs - runEndPollMs)))
  const guarded = <E extends ExecutorError | HookDeadlinePassed>(
    invocation: Effect.Effect<MiddlewareDecision, E>
  ): Effect.Effect<MiddlewareDecision, E | ExecutorError> =>
    Effect.flatMap(route, (before) =>
      Effect.catchAll(invocation, (error): Effect.Effect<never, E | ExecutorError> =>
        !lostToRestart(error)
          ? Effect.fail(error)
          : Effect.flatMap(routeAfter(before, connectionLost.test(error.message) ? runEndWaitMs : 0), (now) =>
            Effect.fail(
              ended(before, now)
                ? executorError(componentId, "NotReady", `its module's run ended during the call (now ${now.phase}): ${error.message}`, now.phase)
                : error
            ))))
  const { invokeWithin } = executor
  return {
    component: executor.component,
    invoke: (envelope) => guarded(executor.invoke(envelope)),
    ...(invokeWithin === undefined ? {} : { invokeWithin: (envelope, withinMs) => guarded(invokeWithin(envelope, withinMs)) })
  }
}
