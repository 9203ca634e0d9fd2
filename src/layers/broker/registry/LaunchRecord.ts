/**
 * The record of a launch an acquire may start: built only when its key has no slot (the one case the
 * slot policy launches), so a warm hello allocates no `Deferred`s and draws no random bytes; and the
 * one bound on how long its waiters can wait.
 */
import { randomBytes } from "node:crypto"
import { Deferred, Effect, FiberId } from "effect"
import { type BackendError, launchFailed } from "../../../services/broker/BackendRegistry.js"
import type { LaunchPlan } from "./Launching.js"
import type { Backend, PendingLaunch } from "./RegistryState.js"

/** A launch of `plan` that has not started yet. */
export const newLaunch = (plan: LaunchPlan, now: number): PendingLaunch => ({
  key: plan.key,
  service: plan.service,
  version: plan.version,
  instance: `${plan.service}-${plan.version}-${randomBytes(4).toString("hex")}`,
  startedAt: now,
  pid: null,
  endpoint: null,
  result: Deferred.unsafeMake<Backend, BackendError>(FiberId.none),
  cancel: Deferred.unsafeMake<void>(FiberId.none)
})

/**
 * What an acquire of a key that has a slot offers the policy as its launch record: never started,
 * never stored (the policy keeps a record only when it launches, and it launches only a key without a slot).
 */
export const noLaunch: PendingLaunch = {
  key: "",
  service: "",
  version: "",
  instance: "",
  startedAt: 0,
  pid: null,
  endpoint: null,
  result: Deferred.unsafeMake<Backend, BackendError>(FiberId.none),
  cancel: Deferred.unsafeMake<void>(FiberId.none)
}

/**
 * Fails the launch's result if nothing settled it in time. The launch answers within ready_timeout_ms
 * plus a stop; this bound only guards against a bug. One timer per launch, not a timeout per waiter: a
 * burst of a thousand waiters would fork two thousand fibers.
 */
export const guardLaunch = (plan: LaunchPlan, launch: PendingLaunch, stopTimeoutMs: number): Effect.Effect<void> =>
  Deferred.await(launch.result).pipe(
    Effect.timeoutFail({
      duration: plan.definition.ready_timeout_ms + stopTimeoutMs + 5_000,
      onTimeout: () => launchFailed(plan.service, `launch of ${plan.service} ${plan.version} gave no answer`)
    }),
    Effect.catchAll((error) => Deferred.fail(launch.result, error)),
    Effect.ignore
  )
