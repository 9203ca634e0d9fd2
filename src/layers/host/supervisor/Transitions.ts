/**
 * Phase changes: each one updates the component's state, is published on the supervisor's PubSub,
 * appended to the lifecycle trace and logged, in that order.
 */
import { Clock, Effect, PubSub, SubscriptionRef } from "effect"
import type { Phase } from "../../../services/host/Component.js"
import type { ExitInfo } from "../../../services/host/ProcessLauncher.js"
import type { LifecycleEvent } from "../../../services/host/Traces.js"
import type { ComponentState, Managed, Probe } from "./ComponentState.js"

/** Moves a component to a phase and records a probe. */
export interface Transitions {
  /** Moves `managed` to `to` with `patch`, publishing the event (also when the phase stays: the reason is news). */
  readonly transition: (
    managed: Managed,
    to: Phase,
    reason: string,
    patch?: Partial<ComponentState>,
    exit?: ExitInfo
  ) => Effect.Effect<void>
  /** A probe result stamped with the Clock's time. */
  readonly probe: (ok: boolean, detail: string) => Effect.Effect<Probe>
}

const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/** Transitions that publish on `events` and append to the lifecycle trace with `trace`. */
export const makeTransitions = (
  events: PubSub.PubSub<LifecycleEvent>,
  trace: (event: LifecycleEvent) => Effect.Effect<void>
): Transitions => ({
  transition: (managed, to, reason, patch = {}, exit) =>
    Effect.gen(function*() {
      const at = yield* isoNow
      const before = yield* SubscriptionRef.get(managed.state)
      const after = { ...before, ...patch, phase: to }
      yield* SubscriptionRef.set(managed.state, after)
      const event: LifecycleEvent = {
        at,
        component: managed.id,
        from: before.phase,
        to,
        reason,
        pid: after.pid,
        ...(exit === undefined ? {} : { exit: { code: exit.code, signal: exit.signal } })
      }
      yield* PubSub.publish(events, event)
      yield* trace(event)
      yield* Effect.logInfo(`${managed.id}: ${before.phase} → ${to}: ${reason}`).pipe(
        Effect.annotateLogs({ component: managed.id, phase: to })
      )
    }),
  probe: (ok, detail) => Effect.map(isoNow, (at): Probe => ({ at, ok, detail }))
})
