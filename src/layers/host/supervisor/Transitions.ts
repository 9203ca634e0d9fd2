/**
 * Phase changes: each one updates the component's state, is published on the supervisor's PubSub,
 * appended to the lifecycle trace and logged, in that order. The state is read and written in one
 * atomic step: its writers run on different fibers (the lifecycle, health checks, invocation timeouts
 * reported by requests, operator commands), and a write from a stale read would lose a failure count or
 * bring back a phase from before a stop.
 */
import { Clock, Effect, PubSub, SubscriptionRef } from "effect"
import type { Phase } from "../../../services/host/Component.js"
import type { ExitInfo } from "../../../services/host/ProcessLauncher.js"
import type { LifecycleEvent } from "../../../services/host/Traces.js"
import type { ComponentState, Managed, Probe } from "./ComponentState.js"

/** What to do to a component's state: a patch, and a phase change when there is one. */
export interface StateChange {
  readonly patch: Partial<ComponentState>
  readonly to?: { readonly phase: Phase; readonly reason: string }
}

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
  /** Applies what `decide` makes of the state as it is at that instant; a phase change is published as `transition` does. */
  readonly update: (managed: Managed, decide: (state: ComponentState) => StateChange) => Effect.Effect<void>
  /** A probe result stamped with the Clock's time. */
  readonly probe: (ok: boolean, detail: string) => Effect.Effect<Probe>
}

const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/** Transitions that publish on `events` and append to the lifecycle trace with `trace`. */
export const makeTransitions = (
  events: PubSub.PubSub<LifecycleEvent>,
  trace: (event: LifecycleEvent) => Effect.Effect<void>
): Transitions => {
  const change = (managed: Managed, decide: (state: ComponentState) => StateChange, exit?: ExitInfo) =>
    Effect.gen(function*() {
      const at = yield* isoNow
      const { before, after, to } = yield* SubscriptionRef.modify(managed.state, (before) => {
        const decided = decide(before)
        const after: ComponentState = { ...before, ...decided.patch, phase: decided.to?.phase ?? before.phase }
        return [{ before, after, to: decided.to }, after] as const
      })
      if (to === undefined) return
      const event: LifecycleEvent = {
        at,
        component: managed.id,
        from: before.phase,
        to: to.phase,
        reason: to.reason,
        pid: after.pid,
        ...(exit === undefined ? {} : { exit: { code: exit.code, signal: exit.signal } })
      }
      yield* PubSub.publish(events, event)
      yield* trace(event)
      yield* Effect.logInfo(`${managed.id}: ${before.phase} → ${to.phase}: ${to.reason}`).pipe(
        Effect.annotateLogs({ component: managed.id, phase: to.phase })
      )
    })
  return {
    transition: (managed, to, reason, patch = {}, exit) => change(managed, () => ({ patch, to: { phase: to, reason } }), exit),
    update: (managed, decide) => change(managed, decide),
    probe: (ok, detail) => Effect.map(isoNow, (at): Probe => ({ at, ok, detail }))
  }
}
