import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Scope, TestClock } from "effect"
import { makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"

const spec = (name: string): LaunchSpec => ({ name, executable: "module", args: [], env: {}, sandbox: "none" })

describe("makeSimulatedLauncher: process plans", () => {
  it.effect("a slow spawn creates nothing until it is done, a timed exit comes on time, and children die with their process", () =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      yield* control.scriptProcess(() => ({ startDelayMs: 200, exitAfter: { afterMs: 1_000, exit: { code: 3, signal: null } }, children: 2 }))
      const scope = yield* Scope.make()
      const launching = yield* Effect.fork(Scope.extend(launcher.launch(spec("a"), 500), scope))
      yield* TestClock.adjust("199 millis")
      expect(yield* control.running).toEqual([])
      yield* TestClock.adjust("1 millis")
      const child = yield* Fiber.join(launching)
      const table = yield* control.table
      expect(table.map((p) => [p.parent, p.leader, p.alive])).toEqual([[null, child.pid, true], [child.pid, child.pid, true], [child.pid, child.pid, true]])
      const grandchild = yield* control.spawnChild(child.pid)
      expect(Option.isSome(grandchild)).toBe(true)
      expect(yield* control.running).toHaveLength(4)
      yield* TestClock.adjust("999 millis")
      expect(yield* control.running).toHaveLength(4)
      yield* TestClock.adjust("1 millis")
      expect(yield* child.exit).toEqual({ code: 3, signal: null })
      expect(yield* control.running).toEqual([])
      expect(yield* control.spawnChild(child.pid)).toEqual(Option.none())
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("a stop whose fiber is interrupted during the TERM grace still KILLs the process when the grace ends", () =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      const launched = yield* Deferred.make<number>()
      // A launch whose readiness fails: its scope's end stops a process that ignores TERM.
      const failing = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const child = yield* launcher.launch(spec("backend"), 1_000)
        yield* control.ignoreTerm(child.pid)
        yield* Deferred.succeed(launched, child.pid)
        return yield* Effect.fail("not ready")
      })))
      const pid = yield* Deferred.await(launched)
      yield* TestClock.adjust("100 millis")
      // Mid-grace, the launch is cancelled (the broker stops).
      yield* Fiber.interruptFork(failing)
      yield* TestClock.adjust("100 millis")
      expect(yield* control.running).toEqual([pid])
      yield* TestClock.adjust("800 millis")
      expect(yield* control.running).toEqual([])
      expect(Exit.isFailure(yield* Fiber.await(failing))).toBe(true)
    }))
})
