import type { Duration, Effect, Schedule } from "effect"
import type { LazyArg } from "effect/Function"
import * as Schema from "effect/Schema"

/** Why a call to an actor got no answer from its owner fiber. */
export const ActorErrorReason = Schema.Literal("Timeout", "Restarted", "Stopped", "MailboxFull")

/** Why a call to an actor got no answer from its owner fiber. */
export type ActorErrorReason = typeof ActorErrorReason.Type

/** A call to actor `actor` failed for `reason`; `detail` says what happened (deadline, defect, stop cause, capacity). */
export class ActorError extends Schema.TaggedError<ActorError>()("ActorError", {
  reason: ActorErrorReason,
  actor: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    const actor = `actor "${this.actor}"`
    switch (this.reason) {
      case "Timeout":
        return `${actor} did not answer within ${this.detail} (its owner is busy or restarting); ` +
          `the call was abandoned and its message is skipped if not yet started — retry later or raise callTimeout`
      case "Restarted":
        return `${actor} restarted because ${this.detail}; its state was reset to initial — ` +
          `retry the call if it is safe to repeat`
      case "Stopped":
        return `${actor} is stopped (${this.detail}) and answers no more calls — ` +
          `call an actor whose scope is still open`
      case "MailboxFull":
        return `${actor} has a full mailbox (${this.detail}); the call was refused without waiting — ` +
          `shed load or raise mailboxCapacity`
    }
  }
}

/** Per-call options; `timeout` replaces the actor's `callTimeout` for this call. */
export interface ActorCallOptions {
  readonly timeout?: Duration.DurationInput
}

/** How to build an actor: its name (in errors and logs), its state, and the bounds on its mailbox and calls. */
export interface ActorOptions<S> {
  /** Names the actor in every error message and log line. */
  readonly name: string
  /** The state at start and after every restart; called each time, so a restart never sees a crashed state. */
  readonly initial: LazyArg<S>
  /** Messages that may wait for the owner before calls fail with `MailboxFull` (default 1024). */
  readonly mailboxCapacity?: number
  /** The deadline on each call, from enqueue to reply (default 1 second). */
  readonly callTimeout?: Duration.DurationInput
  /** Delays between restarts after a defect; when it ends the actor stops (default exponential from 10 ms, capped at 1 s). */
  readonly restartSchedule?: Schedule.Schedule<unknown, unknown>
}

/** State of type `S` owned by one fiber; callers reach it only through a bounded mailbox, each call with a deadline. */
export interface Actor<S> {
  /** The actor's name, as given in its options. */
  readonly name: string
  /** Runs `f` on the owner's state, keeps the new state and answers with the first element. */
  readonly call: <A>(
    f: (state: S) => readonly [A, S],
    options?: ActorCallOptions
  ) => Effect.Effect<A, ActorError>
  /** The current state. */
  readonly get: Effect.Effect<S, ActorError>
  /** Replaces the state with `f(state)`. */
  readonly update: (f: (state: S) => S) => Effect.Effect<void, ActorError>
  /** How many times the owner restarted after a defect. */
  readonly restarts: Effect.Effect<number>
}
