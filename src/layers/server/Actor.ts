import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Fiber,
  Inspectable,
  Option,
  Predicate,
  Queue,
  Ref,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  type Scope
} from "effect"
import { type Actor, type ActorCallOptions, ActorError, type ActorOptions } from "../../services/server/Actor.js"

/** Mailbox capacity when `ActorOptions.mailboxCapacity` is not given. */
export const defaultMailboxCapacity = 1024

/** Call deadline when `ActorOptions.callTimeout` is not given. */
export const defaultCallTimeout: Duration.Duration = Duration.seconds(1)

/** Restart delays when `ActorOptions.restartSchedule` is not given: 10 ms doubling, capped at 1 s, never ending. */
export const defaultRestartSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("10 millis").pipe(
  Schedule.union(Schedule.spaced("1 second"))
)

/** A defect raised while the owner served a message, carried to the supervisor as a typed failure. */
class OwnerCrashed {
  constructor(readonly defect: unknown) {}
}

/** One call waiting in the mailbox: the caller's function bound to its reply. */
interface Envelope<S> {
  /** Applies the message and answers the caller; skips it if the caller already gave up. */
  readonly deliver: (state: S) => Effect.Effect<S, OwnerCrashed>
  /** Answers the caller with `error` instead. */
  readonly reject: (error: ActorError) => Effect.Effect<boolean>
}

const envelope = <S, A>(
  f: (state: S) => readonly [A, S],
  reply: Deferred.Deferred<A, ActorError>
): Envelope<S> => ({
  deliver: (state) =>
    Effect.flatMap(Deferred.isDone(reply), (abandoned) =>
      abandoned
        ? Effect.succeed(state)
        : Effect.try({ try: () => f(state), catch: (defect) => new OwnerCrashed(defect) }).pipe(
          Effect.flatMap(([answer, next]) => Effect.as(Deferred.succeed(reply, answer), next))
        )),
  reject: (error) => Deferred.fail(reply, error)
})

const describeDefect = (defect: unknown): string =>
  Predicate.hasProperty(defect, "message") && typeof defect.message === "string"
    ? defect.message
    : Inspectable.toStringUnknown(defect)

/**
 * Starts an actor whose state lives in one owner fiber for the life of the scope. A message that throws
 * fails its caller and every queued caller with `Restarted`, and the owner restarts from `initial`.
 */
export const makeActor = <S>(options: ActorOptions<S>): Effect.Effect<Actor<S>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { initial, name } = options
    const capacity = options.mailboxCapacity ?? defaultMailboxCapacity
    const callTimeout = Duration.decode(options.callTimeout ?? defaultCallTimeout)
    const restartSchedule = options.restartSchedule ?? defaultRestartSchedule

    const mailbox = yield* Queue.dropping<Envelope<S>>(capacity)
    const stoppedBecause = yield* Ref.make(Option.none<string>())
    const restarts = yield* Ref.make(0)

    const actorError = (reason: ActorError["reason"], detail: string) => new ActorError({ reason, actor: name, detail })

    const failQueued = (error: ActorError) =>
      Effect.flatMap(Queue.takeAll(mailbox), Effect.forEach((queued) => queued.reject(error), { discard: true }))

    // The flag is set before the drain, so a call that offers after the drain sees it and fails itself.
    const stop = (detail: string) =>
      Ref.updateAndGet(stoppedBecause, Option.orElse(() => Option.some(detail))).pipe(
        Effect.flatMap((because) => failQueued(actorError("Stopped", Option.getOrElse(because, () => detail))))
      )

    // Taking and delivering is one uninterruptible step, so an interrupted owner never drops a taken message.
    const serveOne = (state: S): Effect.Effect<S, OwnerCrashed> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(Queue.take(mailbox)), (next) =>
          next.deliver(state).pipe(
            Effect.tapError((crash) =>
              next.reject(actorError("Restarted", `this call's message threw: ${describeDefect(crash.defect)}`))
            )
          ))
      )

    const serveFrom = (state: S): Effect.Effect<never, OwnerCrashed> => Effect.flatMap(serveOne(state), serveFrom)

    const serve = Effect.suspend(() => serveFrom(initial())).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(new OwnerCrashed(defect)))
    )

    // Answers with the schedule's next state once the delay has passed, or None when the actor stopped.
    const restartAfter = (crash: OwnerCrashed, scheduleState: unknown): Effect.Effect<Option.Option<unknown>> =>
      Effect.gen(function*() {
        const defect = describeDefect(crash.defect)
        yield* Effect.uninterruptible(
          failQueued(actorError("Restarted", `a message queued ahead of this call threw: ${defect}`))
        )
        const now = yield* Clock.currentTimeMillis
        const [nextState, , decision] = yield* restartSchedule.step(now, crash.defect, scheduleState)
        const count = yield* Ref.get(restarts)
        if (ScheduleDecision.isDone(decision)) {
          yield* Effect.logError(
            `actor "${name}": a message threw (${defect}); restartSchedule ended after ${count} restarts, stopping`,
            Cause.die(crash.defect)
          ).pipe(Effect.annotateLogs({ actor: name, restarts: count }))
          yield* Effect.uninterruptible(stop(`its restartSchedule ended after ${count} restarts`))
          return Option.none()
        }
        const delay = Duration.millis(Math.max(0, ScheduleIntervals.start(decision.intervals) - now))
        yield* Ref.set(restarts, count + 1)
        yield* Effect.logError(
          `actor "${name}": a message threw (${defect}); queued calls failed, ` +
            `restarting from initial state in ${Duration.format(delay)}`,
          Cause.die(crash.defect)
        ).pipe(Effect.annotateLogs({ actor: name, restarts: count + 1 }))
        yield* Effect.sleep(delay)
        return Option.some(nextState)
      })

    // Tail-recursive through flatMap, so any number of restarts runs in constant stack and memory.
    const supervise = (scheduleState: unknown): Effect.Effect<void> =>
      Effect.catchAll(serve, (crash) =>
        Effect.flatMap(
          restartAfter(crash, scheduleState),
          Option.match({ onNone: () => Effect.void, onSome: supervise })
        ))

    // A fiber forked inside acquire would inherit its uninterruptibility and could never be stopped.
    yield* Effect.acquireRelease(
      Effect.forkDaemon(Effect.interruptible(supervise(restartSchedule.initial))),
      (owner) => Effect.zipRight(Fiber.interrupt(owner), stop("its scope closed"))
    )

    const failIfStopped = Effect.flatMap(
      Ref.get(stoppedBecause),
      Option.match({
        onNone: () => Effect.void,
        onSome: (because) => Effect.fail(actorError("Stopped", because))
      })
    )

    const call = <A>(
      f: (state: S) => readonly [A, S],
      callOptions?: ActorCallOptions
    ): Effect.Effect<A, ActorError> => {
      const timeout = callOptions?.timeout === undefined ? callTimeout : Duration.decode(callOptions.timeout)
      return Effect.uninterruptible(
        Effect.gen(function*() {
          yield* failIfStopped
          const reply = yield* Deferred.make<A, ActorError>()
          const accepted = yield* Queue.offer(mailbox, envelope(f, reply))
          if (!accepted) {
            return yield* Effect.fail(actorError("MailboxFull", `${capacity} messages waiting`))
          }
          // A stop that drained the mailbox before this offer would leave the reply unanswered.
          yield* Effect.catchAll(failIfStopped, (error) => Deferred.fail(reply, error))
          // Interruptible even for a caller in an uninterruptible region (a finalizer), so the deadline holds;
          // completing the reply on interrupt tells the owner to skip the message.
          return yield* Effect.interruptible(Deferred.await(reply)).pipe(
            Effect.onInterrupt(() => Deferred.interrupt(reply))
          )
        })
      ).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => actorError("Timeout", Duration.format(timeout)) })
      )
    }

    return {
      name,
      call,
      get: call((state) => [state, state]),
      update: (f) => call((state) => [undefined, f(state)]),
      restarts: Ref.get(restarts)
    }
  })
