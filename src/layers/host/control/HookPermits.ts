/**
 * The permits of hook invocations (`host.control.max_hook_invocations`): fewer than the server's, so hook
 * traffic cannot take the operator routes' capacity. A plain counter, taken and given back on the event
 * loop without a fiber: the direct path decides its 503 in plain code.
 */
import { Effect, Option } from "effect"

/** Hook invocations at once. */
export class HookPermits {
  private held = 0
  constructor(readonly max: number) {}

  /** Takes a permit if one is free, without waiting. */
  tryTake(): boolean {
    if (this.held >= this.max) return false
    this.held++
    return true
  }

  /** Gives back a permit taken by `tryTake`. */
  release(): void {
    if (this.held > 0) this.held--
  }

  /** Permits taken now. */
  get inUse(): number {
    return this.held
  }

  /** Runs `effect` holding a permit (given back however it ends); `None` at once when none is free. */
  withPermitIfAvailable<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<Option.Option<A>, E, R> {
    return Effect.suspend(() =>
      this.tryTake()
        ? Effect.ensuring(Effect.asSome(effect), Effect.sync(() => this.release()))
        : Effect.succeedNone
    )
  }
}
