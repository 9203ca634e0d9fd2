import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock, Fiber, Duration } from "effect"

describe("toolchain", () => {
  it.effect("drives sleeps with the TestClock", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(Effect.sleep(Duration.seconds(5)).pipe(Effect.as(1)))
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* Fiber.join(fiber)).toBe(1)
    }))
})
