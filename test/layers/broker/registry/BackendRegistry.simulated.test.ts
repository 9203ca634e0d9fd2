import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref, TestClock } from "effect"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import type { BackendRegistryOptions } from "../../../../src/layers/broker/registry/BackendRegistry.js"
import { makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { LaunchError } from "../../../../src/services/host/ProcessLauncher.js"
import { makeRegistryCase, type RegistryCase, registryFor } from "../../../support/brokerRegistry.js"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cbs-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

describe("BackendRegistry on the TestClock (simulated launcher)", () => {
  /** Waits (in real time: definitions are read from real files) until `check` holds. */
  const eventually = (check: Effect.Effect<boolean>) =>
    Effect.gen(function*() {
      for (let i = 0; i < 500; i++) {
        if (yield* check) return
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
      }
      return yield* Effect.die(new Error("condition not met within ~1 s"))
    })

  const simulated = (c: RegistryCase, extra: Partial<BackendRegistryOptions> = {}) =>
    Effect.gen(function*() {
      const { control, layer } = yield* makeSimulatedLauncher
      const registry = yield* registryFor(c, { probeEndpoint: () => Effect.succeed(true), ...extra }).pipe(
        Effect.provide(Layer.merge(layer, LoopbackPortsLive))
      )
      return { control, registry }
    })

  it.scoped("refuses launches past the spawn budget with retry_after_ms, and recovers after the window", () =>
    Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("flaky")
      const { control, registry } = yield* simulated(c)
      yield* control.scriptLaunch((spec) =>
        Effect.fail(new LaunchError({ name: spec.name, reason: "Spawn", message: "simulated spawn failure" }))
      )
      for (let i = 0; i < 3; i++) {
        const error = yield* Effect.flip(registry.acquire("flaky"))
        expect(error).toMatchObject({ code: "launch_failed", message: "simulated spawn failure" })
        expect(error.retryAfterMs).toBeUndefined()
        yield* TestClock.adjust("5 seconds")
      }
      const refused = yield* Effect.flip(registry.acquire("flaky"))
      expect(refused.code).toBe("launch_failed")
      expect(refused.retryAfterMs).toBe(15_000)
      expect(refused.message).toBe(
        "spawn budget of flaky 1.0.0 spent (3 launches per 30 s); retry in 15000 ms; last error: simulated spawn failure"
      )
      expect(yield* registry.counters).toMatchObject({ launches: 3, launchFailures: 3, budgetRefusals: 1 })
      expect(yield* registry.spawnBudgets).toEqual([
        expect.objectContaining({ used: 3, retry_after_ms: 15_000, last_error: "simulated spawn failure" })
      ])
      yield* TestClock.adjust("14999 millis")
      expect((yield* Effect.flip(registry.acquire("flaky"))).retryAfterMs).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* control.scriptLaunch(() => Effect.void)
      const recovered = yield* registry.acquire("flaky")
      expect(recovered.launched).toBe(true)
      expect(yield* control.running).toEqual([recovered.pid])
    }))

  it.scoped("gives every coalesced waiter the same failure of the one launch, and does not cache it", () =>
    Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("slowfail")
      const { control, registry } = yield* simulated(c)
      const attempts = yield* Ref.make(0)
      yield* control.scriptLaunch((spec) =>
        Ref.update(attempts, (n) => n + 1).pipe(
          Effect.zipRight(Effect.sleep("1 second")),
          Effect.zipRight(Effect.fail(new LaunchError({ name: spec.name, reason: "Spawn", message: "late failure" })))
        )
      )
      const waiters = yield* Effect.fork(
        Effect.all(Array.from({ length: 10 }, () => Effect.flip(registry.acquire("slowfail"))), { concurrency: "unbounded" })
      )
      yield* eventually(Effect.map(registry.counters, (counters) => counters.coalescedWaits === 9))
      yield* eventually(Effect.map(Ref.get(attempts), (n) => n === 1))
      yield* TestClock.adjust("1 second")
      const errors = yield* Fiber.join(waiters)
      expect(errors.map((error) => error.message)).toEqual(Array.from({ length: 10 }, () => "late failure"))
      expect(yield* registry.counters).toMatchObject({ launches: 1, coalescedWaits: 9, launchFailures: 1 })
      yield* control.scriptLaunch(() => Effect.void)
      expect((yield* registry.acquire("slowfail")).launched).toBe(true)
      expect((yield* registry.counters).launches).toBe(2)
    }))

  it.scoped("stops a backend nobody acquired for idle_exit_sec, counting from the last acquire", () =>
    Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("idle", { idle_exit_sec: 5 })
      const { control, registry } = yield* simulated(c)
      const backend = yield* registry.acquire("idle")
      yield* TestClock.adjust("4 seconds")
      expect(yield* registry.acquire("idle")).toMatchObject({ pid: backend.pid, launched: false })
      yield* TestClock.adjust("4 seconds")
      expect(yield* control.running).toEqual([backend.pid])
      yield* TestClock.adjust("2 seconds")
      expect(yield* control.running).toEqual([])
      expect(yield* registry.snapshot).toEqual([])
      expect((yield* registry.counters).idleExits).toBe(1)
    }))

  it.scoped("shows starting, live and stopping backends in the snapshot", () =>
    Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("shown", { launch: { args: ["--x"] } })
      const { control, registry } = yield* simulated(c, { stopTimeoutMs: 2_000 })
      const attempts = yield* Ref.make(0)
      yield* control.scriptLaunch(() => Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.sleep("1 second")))
      const pending = yield* Effect.fork(registry.acquire("shown"))
      yield* eventually(Effect.map(Ref.get(attempts), (n) => n === 1))
      const [starting] = yield* registry.snapshot
      expect(starting).toMatchObject({ service: "shown", version: "1.0.0", state: "starting", pid: null, last_error: null })
      expect(starting?.endpoint).toMatchObject({ kind: "unix" })
      yield* TestClock.adjust("1 second")
      const backend = yield* Fiber.join(pending)
      const [liveEntry] = yield* registry.snapshot
      expect(liveEntry).toMatchObject({ state: "live", pid: backend.pid, key: backend.key, instance: backend.instance })
      expect(liveEntry?.started_at).toBe(new Date(0).toISOString())
      yield* control.ignoreTerm(backend.pid)
      const stopping = yield* Effect.fork(registry.stopAll)
      yield* TestClock.adjust("10 millis")
      expect((yield* registry.snapshot).map((entry) => [entry.state, entry.last_error])).toEqual([
        ["stopping", "stopped with all backends"]
      ])
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(stopping)
      expect(yield* registry.snapshot).toEqual([])
      expect(yield* control.running).toEqual([])
    }))
})
