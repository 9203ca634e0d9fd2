/**
 * Status-page logins in virtual time: a session lasts 12 h, a login code 60 s and one use, and both are
 * bounded in number (the oldest go first); whatever ends a session is seen by `ended` at once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import { makeSessionStore, maxSessions } from "../../../../src/layers/host/control/Sessions.js"

describe("Sessions", () => {
  it.effect("a session is open for 12 hours, then not; a closed one at once", () =>
    Effect.gen(function*() {
      const store = yield* makeSessionStore
      const { id, key } = yield* store.open
      expect(Buffer.from(id, "base64url").length).toBe(32)
      expect(Buffer.from(key, "base64url").length).toBe(32)
      yield* TestClock.adjust("11 hours")
      expect(yield* store.isOpen(id, key)).toBe(true)
      yield* TestClock.adjust("1 hour")
      expect(yield* store.isOpen(id, key)).toBe(false)
      const other = yield* store.open
      yield* store.close(other.id)
      expect(yield* store.isOpen(other.id, other.key)).toBe(false)
      expect(yield* store.isOpen("made-up", other.key)).toBe(false)
    }))

  it.effect("a session opens only with its own page key", () =>
    Effect.gen(function*() {
      const store = yield* makeSessionStore
      const first = yield* store.open
      const second = yield* store.open
      expect(first.key).not.toBe(second.key)
      expect(yield* store.isOpen(first.id, first.key)).toBe(true)
      expect(yield* store.isOpen(first.id, second.key)).toBe(false)
      expect(yield* store.isOpen(first.id, "")).toBe(false)
      expect(yield* store.isOpen(first.id, "1")).toBe(false)
    }))

  it.effect("a login code opens one session within 60 s, once", () =>
    Effect.gen(function*() {
      const store = yield* makeSessionStore
      const { code, expiresAtMs } = yield* store.issueCode
      expect(expiresAtMs).toBe(60_000)
      const session = yield* store.redeem(code)
      expect(Option.isSome(session) && (yield* store.isOpen(session.value.id, session.value.key))).toBe(true)
      expect(Option.isNone(yield* store.redeem(code))).toBe(true)
      const late = yield* store.issueCode
      yield* TestClock.adjust("60 seconds")
      expect(Option.isNone(yield* store.redeem(late.code))).toBe(true)
    }))

  it.effect("keeps at most maxSessions sessions: a new one past that ends the oldest", () =>
    Effect.gen(function*() {
      const store = yield* makeSessionStore
      const first = yield* store.open
      const second = yield* store.open
      for (let i = 2; i < maxSessions; i++) yield* store.open
      expect(yield* store.isOpen(first.id, first.key)).toBe(true)
      const newest = yield* store.open
      expect(yield* store.isOpen(first.id, first.key)).toBe(false)
      expect(yield* store.isOpen(second.id, second.key)).toBe(true)
      expect(yield* store.isOpen(newest.id, newest.key)).toBe(true)
    }))

  it.effect("ended completes when the session is closed, expires or is pushed out, and not before", () =>
    Effect.gen(function*() {
      const store = yield* makeSessionStore
      const closed = (yield* store.open).id
      const expiring = (yield* store.open).id
      const whenClosed = yield* Effect.fork(store.ended(closed))
      const whenExpired = yield* Effect.fork(store.ended(expiring))
      yield* TestClock.adjust("1 hour")
      expect(yield* Fiber.poll(whenClosed)).toEqual(Option.none())
      yield* store.close(closed)
      yield* Fiber.join(whenClosed)
      expect(yield* Fiber.poll(whenExpired)).toEqual(Option.none())
      yield* TestClock.adjust("11 hours")
      yield* Fiber.join(whenExpired)

      const oldest = (yield* store.open).id
      const whenPushedOut = yield* Effect.fork(store.ended(oldest))
      for (let i = 0; i < maxSessions; i++) yield* store.open
      yield* Fiber.join(whenPushedOut)
      // A session that is not open has ended already.
      yield* store.ended("made-up")
    }))
})
