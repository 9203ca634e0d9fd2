/**
 * ShutdownUrgency: a stop that must not wait. The first SIGTERM/SIGINT drains with every grace period;
 * a second one declares urgency, and every bounded wait of the drain (in-flight requests, a child's
 * TERM → KILL grace) ends at once — requests still get their 503, children are still killed.
 */
import { Context, Deferred, Effect, Fiber } from "effect"

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
 * unchanged where no `ShutdownUrgency` is provided. Interruptible exactly as the caller is: inside a
 * finalizer or an uninterruptible stop, an interruption of the caller neither ends the wait early nor
 * fails it; only its end or urgency does (so a TERM grace still ends in its KILL).
 */
export const unlessUrgent = <A, E, R>(wait: Effect.Effect<A, E, R>): Effect.Effect<A | undefined, E, R> =>
  Effect.flatMap(Effect.serviceOption(ShutdownUrgency), (urgency) =>
    urgency._tag === "None"
      ? wait
      // The race runs on a daemon fiber, not on children of the caller: an interruption of the caller
      // reaches its children at once, even in an uninterruptible region, and would end the wait early.
      // Both sides interruptible: the race's loser must be interruptible, or the race hangs on it. The
      // join is as interruptible as the caller; only when the caller is interrupted there does the race go too.
      : Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          Effect.forkDaemon(Effect.interruptible(Effect.raceFirst(wait, Effect.as(urgency.value.declared, undefined)))),
          (race) => Effect.onInterrupt(restore(Fiber.join(race)), () => Fiber.interrupt(race))
        )
      ))
