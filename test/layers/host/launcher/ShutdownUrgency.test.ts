/**
 * A second stop signal (`ShutdownUrgency`) cuts a child's TERM → KILL grace: a child that ignores
 * TERM with a 20 s grace is KILLed as soon as urgency is declared, not 20 s later. Without urgency
 * declared the grace is kept (the stop is still waiting when the check runs), and an interruption of
 * the fiber whose scope is stopping the child neither ends the grace nor skips the KILL.
 */
import * as Fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Schedule } from "effect"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { type ChildHandle, type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import { makeShutdownUrgency, ShutdownUrgency } from "../../../../src/services/system/ShutdownUrgency.js"

const stubborn: LaunchSpec = {
  name: "ignores-term",
  executable: "/bin/sh",
  args: ["-c", "trap '' TERM; echo armed; while :; do sleep 1; done"],
  env: {},
  sandbox: "none"
}

/** Waits (at most 5 s) until `child` has printed "armed": its TERM trap is set. */
const armed = (child: ChildHandle) =>
  child.recentLines.pipe(
    Effect.repeat({ until: (lines) => lines.includes("armed"), schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the child did not print \"armed\" within 5 s") }),
    Effect.orDie
  )

/** Whether a process `pid` still runs (a zombie counts as gone). */
const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  return !/^\d+ \(.*\) Z/.test(readStat(pid))
}

const readStat = (pid: number): string => {
  try {
    return Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return ""
  }
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

  it.scopedLive("interrupting the fiber whose scope is stopping a TERM-ignoring child mid-grace still ends in KILL", () =>
    Effect.gen(function*() {
      const urgency = yield* makeShutdownUrgency
      const { launch } = yield* ProcessLauncher
      const launched = yield* Deferred.make<ChildHandle>()
      // The child belongs to this fiber's scope: interrupting the fiber stops it (TERM → 1.5 s → KILL) in a finalizer.
      const owner = yield* Effect.fork(
        Effect.scoped(Effect.flatMap(launch(stubborn, 1_500), (child) => Effect.zipRight(Deferred.succeed(launched, child), Effect.never))).pipe(
          Effect.provideService(ShutdownUrgency, urgency)
        )
      )
      const child = yield* Deferred.await(launched).pipe(Effect.timeout("5 seconds"), Effect.orDie)
      // Whatever the outcome, no child of this test is left behind (its group, by its pid).
      yield* Effect.addFinalizer(() => Effect.sync(() => running(child.pid) && process.kill(-child.pid, "SIGKILL")))
      yield* armed(child)
      yield* Fiber.interruptFork(owner)
      yield* Effect.sleep("300 millis")
      expect(running(child.pid), "the child ignores TERM, so it runs during the grace").toBe(true)
      // A second interruption mid-grace (as a host stop's scope close after an interrupted operator stop).
      yield* Fiber.interruptFork(owner)
      yield* Fiber.await(owner).pipe(Effect.timeout("6 seconds"), Effect.orDie)
      const exit = yield* child.exit.pipe(Effect.timeout("3 seconds"), Effect.option)
      expect(Option.map(exit, (info) => info.signal)).toEqual(Option.some("SIGKILL"))
      expect(running(child.pid)).toBe(false)
    }).pipe(Effect.provide(ProcessLauncherLive)))
})
