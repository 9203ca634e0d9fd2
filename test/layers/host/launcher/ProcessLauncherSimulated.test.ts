import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Scope, TestClock } from "effect"
import { firstSimulatedPid, makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { LaunchError, type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"

const spec = (name: string): LaunchSpec => ({ name, executable: "module", args: [], env: {}, sandbox: "none" })

describe("makeSimulatedLauncher", () => {
  it.scoped("records launches with fake pids and lets a test crash a process", () =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      const a = yield* launcher.launch(spec("a"), 1_000)
      const b = yield* launcher.launch(spec("b"), 1_000)
      expect([a.pid, b.pid]).toEqual([firstSimulatedPid, firstSimulatedPid + 1])
      expect((yield* control.nextLaunch).spec.name).toBe("a")
      expect((yield* control.launches).map((launch) => launch.pid)).toEqual([a.pid, b.pid])
      yield* control.emit(a.pid, "listening")
      expect(yield* a.recentLines).toEqual(["listening"])
      yield* control.crash(a.pid, 3)
      expect(yield* a.exit).toEqual({ code: 3, signal: null })
      expect(yield* control.running).toEqual([b.pid])
      expect((yield* a.stop(1_000)).how).toBe("already_exited")
    }))

  it.scoped("stops a TERM-honouring process at once, gracefully", () =>
    Effect.gen(function*() {
      const { layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      const child = yield* launcher.launch(spec("a"), 1_000)
      expect(yield* child.stop(5_000)).toEqual({
        how: "graceful",
        exit: { code: null, signal: "SIGTERM" },
        survivors: []
      })
    }))

  it.scoped("KILLs a TERM-ignoring process only after timeoutMs on the TestClock", () =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      const child = yield* launcher.launch(spec("stubborn"), 1_000)
      yield* control.ignoreTerm(child.pid)
      const stopping = yield* Effect.fork(child.stop(3_000))
      yield* TestClock.adjust("2999 millis")
      expect(Option.isNone(yield* Fiber.poll(stopping))).toBe(true)
      expect(yield* control.running).toEqual([child.pid])
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(stopping)).toEqual({
        how: "killed",
        exit: { code: null, signal: "SIGKILL" },
        survivors: []
      })
    }))

  it.effect("closing the launch scope stops a TERM-ignoring process after stopTimeoutMs (bounded in the finalizer)", () =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      const scope = yield* Scope.make()
      const child = yield* Scope.extend(launcher.launch(spec("stubborn"), 500), scope)
      yield* control.ignoreTerm(child.pid)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("499 millis")
      expect(Option.isNone(yield* Fiber.poll(closing))).toBe(true)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closing)
      expect(yield* child.exit).toEqual({ code: null, signal: "SIGKILL" })
    }))

  it.effect("scripts launch failures and run results, enforcing run's timeout on the Clock", () =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const launcher = yield* Effect.provide(ProcessLauncher, layer)
      yield* control.scriptLaunch((launched) =>
        new LaunchError({ name: launched.name, reason: "Spawn", message: `cannot start "${launched.name}"` })
      )
      const refused = yield* Effect.flip(Effect.scoped(launcher.launch(spec("ghost"), 1_000)))
      expect(refused.reason).toBe("Spawn")
      expect(yield* control.launches).toEqual([])

      const limits = { timeoutMs: 1_000, maxStdoutBytes: 4 }
      yield* control.scriptRun(({ stdin }) =>
        Effect.as(Effect.sleep("600 millis"), { exit: { code: 0, signal: null }, stdout: stdin, stderrTail: "" })
      )
      const ok = yield* Effect.fork(launcher.run(spec("cmd"), new Uint8Array([1, 2]), limits))
      yield* TestClock.adjust("600 millis")
      expect((yield* Fiber.join(ok)).stdout).toEqual(new Uint8Array([1, 2]))
      const big = yield* Effect.fork(Effect.flip(launcher.run(spec("cmd"), new Uint8Array(5), limits)))
      yield* TestClock.adjust("600 millis")
      expect((yield* Fiber.join(big)).reason).toBe("OutputTooLarge")

      yield* control.scriptRun(() => Effect.never)
      const slow = yield* Effect.fork(Effect.flip(launcher.run(spec("cmd"), new Uint8Array(), limits)))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(slow)).reason).toBe("Timeout")
      expect((yield* control.runs).length).toBe(3)
    }))
})
