import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, HashMap, Logger, LogLevel, Option, Schedule, Scope, TestClock } from "effect"
import { makeActor } from "../../../src/layers/server/Actor.js"
import type { Actor } from "../../../src/services/server/Actor.js"

const throwBoom = (): readonly [void, number] => {
  throw new Error("boom")
}

const increment = (n: number) => n + 1

/** Crashes the owner so it sits in its restart delay; calls sent meanwhile wait in the mailbox. */
const pauseOwner = (actor: Actor<number>) => Effect.flip(actor.call(throwBoom))

/** Forks a call and lets it run until it waits for its reply, so mailbox order is the order of these calls. */
const enqueue = <A, E>(call: Effect.Effect<A, E>) => Effect.tap(Effect.fork(call), () => Effect.yieldNow())

describe("makeActor", () => {
  it.scoped("serializes calls: 1000 concurrent increments leave exactly 1000 and each sees a distinct count", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({ name: "counter", initial: () => 0 })
      const seen = yield* Effect.all(
        Array.from({ length: 1000 }, () => counter.call((n) => [n, n + 1])),
        { concurrency: "unbounded" }
      )
      expect(yield* counter.get).toBe(1000)
      expect(new Set(seen).size).toBe(1000)
    }))

  it.scoped("fails a call with Timeout when the owner does not answer before the deadline, and skips its message", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        restartSchedule: Schedule.spaced("10 seconds")
      })
      yield* pauseOwner(counter)
      const late = yield* enqueue(counter.update(increment))
      yield* TestClock.adjust("999 millis")
      expect(Option.isNone(yield* Fiber.poll(late))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(late))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain(`actor "counter" did not answer within 1s`)
      yield* TestClock.adjust("9 seconds")
      expect(yield* counter.get).toBe(0)
    }))

  it.scoped("honours a per-call timeout over the actor's callTimeout", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        restartSchedule: Schedule.spaced("10 seconds")
      })
      yield* pauseOwner(counter)
      const patient = yield* enqueue(counter.call((n) => [n, n], { timeout: "5 seconds" }))
      yield* TestClock.adjust("4 seconds")
      expect(Option.isNone(yield* Fiber.poll(patient))).toBe(true)
      yield* TestClock.adjust("1 second")
      expect((yield* Effect.flip(Fiber.join(patient))).reason).toBe("Timeout")
    }))

  it.scoped("keeps the deadline for a caller in an uninterruptible region, such as a finalizer", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        restartSchedule: Schedule.spaced("10 seconds")
      })
      yield* pauseOwner(counter)
      const shielded = yield* enqueue(Effect.uninterruptible(counter.update(increment)))
      yield* TestClock.adjust("1 second")
      expect((yield* Effect.flip(Fiber.join(shielded))).reason).toBe("Timeout")
    }))

  it.scoped("gives the caller of a throwing message Restarted with the defect's message", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({ name: "counter", initial: () => 0 })
      yield* counter.update(() => 5)
      const error = yield* Effect.flip(counter.call(throwBoom))
      expect(error.reason).toBe("Restarted")
      expect(error.actor).toBe("counter")
      expect(error.detail).toBe("this call's message threw: boom")
      expect(error.message).toContain(`actor "counter" restarted because this call's message threw: boom`)
    }))

  it.scoped("answers from the initial state only after the restart delay once a message threw", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({ name: "counter", initial: () => 0 })
      yield* counter.update(() => 5)
      yield* pauseOwner(counter)
      const next = yield* enqueue(counter.get)
      yield* TestClock.adjust("9 millis")
      expect(Option.isNone(yield* Fiber.poll(next))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(next)).toBe(0)
      expect(yield* counter.restarts).toBe(1)
    }))

  it.scoped("fails every call queued behind a throwing message with Restarted instead of leaving it hanging", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        callTimeout: "1 minute",
        restartSchedule: Schedule.spaced("100 millis")
      })
      yield* pauseOwner(counter)
      const thrower = yield* enqueue(counter.call(throwBoom))
      const queued = yield* Effect.all([enqueue(counter.update(increment)), enqueue(counter.update(increment))])
      yield* TestClock.adjust("100 millis")

      const thrown = yield* Effect.flip(Fiber.join(thrower))
      expect(thrown.reason).toBe("Restarted")
      expect(thrown.detail).toBe("this call's message threw: boom")
      // Polled, not joined: a queued call left hanging would otherwise wait for the next restart.
      for (const fiber of queued) {
        const exit = yield* Fiber.poll(fiber)
        expect(exit).toEqual(Option.some(Exit.fail(expect.objectContaining({
          reason: "Restarted",
          detail: "a message queued ahead of this call threw: boom"
        }))))
      }

      const next = yield* enqueue(counter.get)
      yield* TestClock.adjust("100 millis")
      expect(yield* Fiber.join(next)).toBe(0)
      expect(yield* counter.restarts).toBe(2)
    }))

  it.scoped("counts restarts and logs one error line per crash naming the actor and the defect", () => {
    const lines: Array<{ level: LogLevel.LogLevel; actor: Option.Option<unknown>; cause: string }> = []
    const capture = Logger.make(({ annotations, cause, logLevel }) => {
      lines.push({ level: logLevel, actor: HashMap.get(annotations, "actor"), cause: Cause.pretty(cause) })
    })
    return Effect.gen(function*() {
      const counter = yield* makeActor({ name: "counter", initial: () => 0 })
      yield* pauseOwner(counter)
      yield* TestClock.adjust("10 millis")
      yield* pauseOwner(counter)
      yield* TestClock.adjust("20 millis")
      expect(yield* counter.get).toBe(0)
      expect(yield* counter.restarts).toBe(2)
      expect(lines).toHaveLength(2)
      for (const line of lines) {
        expect(line.level).toBe(LogLevel.Error)
        expect(line.actor).toEqual(Option.some("counter"))
        expect(line.cause).toContain("boom")
      }
    }).pipe(Effect.provide(Logger.add(capture)))
  })

  it.scoped("fails fast with MailboxFull when the mailbox is full, without waiting for the deadline", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        mailboxCapacity: 2,
        restartSchedule: Schedule.spaced("500 millis")
      })
      yield* pauseOwner(counter)
      const queued = yield* Effect.all([enqueue(counter.update(increment)), enqueue(counter.update(increment))])
      const refused = yield* Effect.flip(counter.update(increment))
      expect(refused.reason).toBe("MailboxFull")
      expect(refused.message).toContain(`actor "counter" has a full mailbox (2 messages waiting)`)
      yield* TestClock.adjust("500 millis")
      yield* Fiber.joinAll(queued)
      expect(yield* counter.get).toBe(2)
    }))

  it.effect("fails pending and later calls with Stopped once its scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        restartSchedule: Schedule.spaced("10 seconds")
      }).pipe(Scope.extend(scope))
      yield* pauseOwner(counter)
      const pending = yield* enqueue(counter.update(increment))
      yield* Scope.close(scope, Exit.void)

      const stopped = yield* Effect.flip(Fiber.join(pending))
      expect(stopped.reason).toBe("Stopped")
      expect(stopped.detail).toBe("its scope closed")
      const later = yield* Effect.flip(counter.get)
      expect(later.reason).toBe("Stopped")
      expect(later.message).toContain(`actor "counter" is stopped (its scope closed)`)
    }))

  it.scoped("stops for good with Stopped when its restartSchedule ends", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({ name: "counter", initial: () => 0, restartSchedule: Schedule.recurs(0) })
      expect((yield* pauseOwner(counter)).reason).toBe("Restarted")
      const later = yield* Effect.flip(counter.get)
      expect(later.reason).toBe("Stopped")
      expect(later.detail).toBe("its restartSchedule ended after 0 restarts")
      expect(yield* counter.restarts).toBe(0)
    }))

  it.scoped("keeps answering after a caller is interrupted, and never applies the interrupted caller's message", () =>
    Effect.gen(function*() {
      const counter = yield* makeActor({
        name: "counter",
        initial: () => 0,
        restartSchedule: Schedule.spaced("100 millis")
      })
      yield* pauseOwner(counter)
      const abandoned = yield* enqueue(counter.update(increment))
      yield* Fiber.interrupt(abandoned)
      const kept = yield* enqueue(counter.update((n) => n + 10))
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(kept)
      expect(yield* counter.get).toBe(10)
    }))
})
