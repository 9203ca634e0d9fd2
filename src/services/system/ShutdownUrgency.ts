/**
 * ShutdownUrgency: a stop that must not wait. The first SIGTERM/SIGINT drains with every grace period;
 * a second one declares urgency, and every bounded wait of the drain (in-flight requests, a child's
 * TERM → KILL grace) ends at once — requests still get their 503, children are still killed.
 */
import { Context, Deferred, Effect } from "effect"

/** Whether the stop in progress must cut its grace periods to zero. */
export interface ShutdownUrgencyShape {
  /** Completes when urgency is declared (never, otherwise). */
  readonly declared: Effect.Effect<void>
  /** Declares it: every wait that races `declared` ends now. */
  readonly declare: Effect.Effect<void>
}

/** The urgency of the current process's stop. */
export class ShutdownUrgency extends Context.Tag("corral/ShutdownUrgency")<ShutdownUrgency, ShutdownUrgencyShape>() {}

/** A fresh urgency flag, not declared. */
export const makeShutdownUrgency: Effect.Effect<ShutdownUrgencyShape> = Effect.map(Deferred.make<void>(), (deferred) => ({
  declared: Deferred.await(deferred),
  declare: Effect.asVoid(Deferred.succeed(deferred, undefined))
}))

/**
 * `wait`, cut short when urgency is declared in the context (returns `undefined` then); `wait`
 * unchanged where no `ShutdownUrgency` is provided. Works inside finalizers too (see below).
 */
export const unlessUrgent = <A, E, R>(wait: Effect.Effect<A, E, R>): Effect.Effect<A | undefined, E, R> =>
  Effect.flatMap(Effect.serviceOption(ShutdownUrgency), (urgency) =>
    urgency._tag === "None"
      ? wait
      // Both sides interruptible: in a finalizer the race's loser must still be interruptible, or the race hangs on it.
      : Effect.raceFirst(Effect.interruptible(wait), Effect.interruptible(Effect.as(urgency.value.declared, undefined))))
