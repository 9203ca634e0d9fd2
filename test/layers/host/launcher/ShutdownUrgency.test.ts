/**
 * A second stop signal (`ShutdownUrgency`) cuts a child's TERM → KILL grace: a child that ignores
 * TERM with a 20 s grace is KILLed as soon as urgency is declared, not 20 s later. Without urgency
 * declared the grace is kept (the stop is still waiting when the check runs).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import { makeShutdownUrgency, ShutdownUrgency } from "../../../../src/services/system/ShutdownUrgency.js"

const stubborn: LaunchSpec = {
  name: "ignores-term",
  executable: "/bin/sh",
  args: ["-c", "trap '' TERM; echo armed; while :; do sleep 1; done"],
  env: {},
  sandbox: "none"
}

describe("ShutdownUrgency and child stops", () => {
  it.scopedLive("declaring urgency KILLs a TERM-ignoring child at once instead of after its 20 s grace", () =>
    Effect.gen(function*() {
      const urgency = yield* makeShutdownUrgency
      const { launch } = yield* ProcessLauncher
      const child = yield* launch(stubborn, 20_000)
      yield* child.recentLines.pipe(
        Effect.repeat({ until: (lines) => lines.includes("armed"), schedule: Schedule.spaced("10 millis") }),
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the child did not print \"armed\" within 5 s") }),
        Effect.orDie
      )
      const stopping = yield* Effect.fork(Effect.provideService(child.stop(20_000), ShutdownUrgency, urgency))
      yield* Effect.sleep("500 millis")
      expect(yield* Fiber.poll(stopping)).toEqual(expect.objectContaining({ _tag: "None" }))
      const declaredAt = Date.now()
      yield* urgency.declare
      const outcome = yield* Fiber.join(stopping)
      expect(Date.now() - declaredAt).toBeLessThan(3_000)
      expect(outcome.how).toBe("killed")
      expect(outcome.survivors).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))
})
