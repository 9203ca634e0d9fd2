/**
 * The broker's descriptor guard: the `FdPressure` policy fed by /proc/self/fd readings — every
 * `fdSampleIntervalMs`, and per accept only when near the limit or while demoted — and by failed
 * accepts (EMFILE). While demoted the broker refuses hellos `overloaded`.
 */
import { Effect, Schedule } from "effect"
import type { Scope } from "effect"
import { readFdCounts } from "../system/FdUsage.js"
import { type FdPressureState, defaultFdPressurePolicy, initialFdPressureState, step as fdStep } from "../../services/policies/FdPressure.js"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** How often the broker reads its descriptor usage from /proc while no accept needs a reading. */
export const fdSampleIntervalMs = 250

/** The guard's state and what feeds it. */
export interface BrokerFdGuard {
  /** The policy's state now (read synchronously on every hello). */
  readonly current: () => FdPressureState
  /** Run on each accepted connection. */
  readonly observeAccept: Effect.Effect<void>
  /** Run on each failed accept. */
  readonly acceptFailed: (error: Error) => Effect.Effect<void>
  /** Takes a reading now, then one every `fdSampleIntervalMs` until the scope closes. */
  readonly startSampling: Effect.Effect<void, never, Scope.Scope>
}

/** A guard that has seen nothing yet. */
export const makeBrokerFdGuard = (): BrokerFdGuard => {
  // Plain state: each update is one synchronous step, so no Ref is needed between the broker's fibers.
  let state: FdPressureState = initialFdPressureState
  // Accepts that cannot reach the low watermark since the last reading (each adds one descriptor at
  // most): only past them, or while demoted, does an accept read /proc itself.
  let acceptsUntilCheck = 0

  const observeFds = (event: "Accepted" | "Sampled") =>
    Effect.flatMap(readFdCounts, (usage) =>
      Effect.sync(() => {
        if (usage === "unknown") return
        acceptsUntilCheck = usage === "exhausted"
          ? 0
          : Math.max(0, Math.floor(defaultFdPressurePolicy.lowWatermark * usage.softLimit) - usage.openFds)
        state = fdStep(
          defaultFdPressurePolicy,
          state,
          usage === "exhausted" ? { _tag: "AcceptFailed", code: "EMFILE" } : { _tag: event, ...usage }
        ).state
      }))

  /**
   * Per accept, /proc/self/fd is read (O(open fds)) only while demoted or once enough accepts since the
   * last reading could have reached the low watermark; before that an accept changes nothing, and the
   * sampler (and accept failures) catch other rises.
   */
  const observeAccept = Effect.suspend(() => {
    const left = acceptsUntilCheck
    acceptsUntilCheck = Math.max(0, left - 1)
    return state.demoted || left === 0 ? observeFds("Accepted") : Effect.void
  })

  const acceptFailed = (error: Error) =>
    Effect.sync(() => {
      state = fdStep(defaultFdPressurePolicy, state, { _tag: "AcceptFailed", code: errorCode(error) ?? "UNKNOWN" }).state
    })

  const startSampling = Effect.zipRight(
    observeFds("Sampled"),
    Effect.asVoid(Effect.forkScoped(Effect.interruptible(Effect.repeat(observeFds("Sampled"), Schedule.spaced(fdSampleIntervalMs)))))
  )

  return { current: () => state, observeAccept, acceptFailed, startSampling }
}
