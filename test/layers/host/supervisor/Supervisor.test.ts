import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Ref, Schema, TestClock } from "effect"
import { makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { makeSupervisor } from "../../../../src/layers/host/supervisor/Supervisor.js"
import { HostConfig } from "../../../../src/services/host/HostConfig.js"
import { type ModuleBehaviour, scriptedModuleClient } from "../../../support/scriptedModules.js"
import { awaitPhase, realPause, simulatedComponent } from "../../../support/simulatedSupervisor.js"
import type { LifecycleEvent } from "../../../../src/services/host/Traces.js"

const component = simulatedComponent

const harness = (initial: ModuleBehaviour, overrides: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const { layer, control } = yield* makeSimulatedLauncher
    const behaviour = yield* Ref.make(initial)
    const events = yield* Ref.make<ReadonlyArray<LifecycleEvent>>([])
    const config = Schema.decodeUnknownSync(HostConfig)({ components: { "sim.one": { ...component, ...overrides } } })
    const supervisor = yield* makeSupervisor({
      config,
      dataDir: yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-sup-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      ),
      traceLifecycle: (event) => Ref.update(events, (all) => [...all, event])
    }).pipe(Effect.provide(Layer.mergeAll(layer, scriptedModuleClient(behaviour), LoopbackPortsLive)))
    return { supervisor, control, behaviour, events }
  }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {}))))

describe("Supervisor (simulated processes, TestClock)", () => {
  it.scoped("routes nothing until the module is ready and initialised, then publishes ready with its report", () =>
    Effect.gen(function*() {
      const { supervisor, control, behaviour, events } = yield* harness({ ready: false, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      const launch = yield* control.nextLaunch
      expect(launch.spec.env["CORRAL_MODULE_ID"]).toBe("sim")
      expect(Number(launch.spec.env["CORRAL_MODULE_PORT"])).toBeGreaterThan(0)
      expect((yield* supervisor.route("sim.one")).phase).toBe("starting")
      yield* Ref.update(behaviour, (b) => ({ ...b, ready: true }))
      yield* TestClock.adjust("100 millis")
      const view = yield* awaitPhase(supervisor, "sim.one", "ready")
      expect(view.report?.name).toBe("sim")
      expect(view.pid).toBe(launch.pid)
      expect((yield* Ref.get(events)).map((e) => e.to)).toEqual(["starting", "ready"])
    }))

  it.scoped("a module that never becomes ready is stopped and failed, and never restarted", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* harness({ ready: false, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      yield* control.nextLaunch
      yield* TestClock.adjust("1001 millis")
      const view = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(view.last_error).toContain("not ready within startup_timeout_ms (1000 ms)")
      expect(yield* control.running).toEqual([])
      yield* TestClock.adjust("1 hour")
      expect(yield* control.launches).toHaveLength(1)
    }))

  it.scoped("restarts a crashed module with backoff, fails when the budget is spent, and does not flap", () =>
    Effect.gen(function*() {
      const { supervisor, control, events } = yield* harness({ ready: true, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      for (let crash = 1; crash <= 2; crash++) {
        const launch = yield* control.nextLaunch
        yield* awaitPhase(supervisor, "sim.one", "ready")
        yield* control.crash(launch.pid, 1)
        const waiting = yield* awaitPhase(supervisor, "sim.one", "starting")
        expect(waiting.next_attempt_at).not.toBeNull()
        expect(waiting.restarts).toEqual({ used: crash, left: 2 - crash })
        expect(yield* control.launches).toHaveLength(crash)
        yield* TestClock.adjust("1 second")
      }
      const last = yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      yield* control.crash(last.pid, 3)
      const failed = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(failed.last_error).toBe("process exited with code 3; restart budget spent: 2 restarts within 60 s (max 2)")
      yield* TestClock.adjust("1 hour")
      expect(yield* control.launches).toHaveLength(3)
      const lifecycle = yield* Ref.get(events)
      expect(lifecycle.filter((e) => e.exit !== undefined).map((e) => e.exit?.code)).toEqual([1, 1, 3])
      // Only an operator start leaves `failed`, with a fresh budget.
      yield* supervisor.start("sim.one")
      yield* control.nextLaunch
      const again = yield* awaitPhase(supervisor, "sim.one", "ready")
      expect(again.restarts).toEqual({ used: 0, left: 2 })
    }))

  it.scoped("never restarts under restart_policy never", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* harness({ ready: true, healthy: true, contractVersion: "1" }, {
        restart_policy: { mode: "never" }
      })
      yield* supervisor.start("sim.one")
      const launch = yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      yield* control.crash(launch.pid, 1)
      const view = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(view.last_error).toContain("restart policy is never")
    }))

  it.scoped("health failures in a row make it degraded (still routable), a success makes it ready", () =>
    Effect.gen(function*() {
      const { supervisor, control, behaviour } = yield* harness({ ready: true, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      yield* Ref.update(behaviour, (b) => ({ ...b, healthy: false }))
      yield* TestClock.adjust("1 second")
      yield* realPause
      expect((yield* supervisor.get("sim.one")).phase).toBe("ready")
      yield* TestClock.adjust("1 second")
      const degraded = yield* awaitPhase(supervisor, "sim.one", "degraded")
      expect(degraded.last_health?.ok).toBe(false)
      expect((yield* supervisor.route("sim.one")).phase).toBe("degraded")
      yield* Ref.update(behaviour, (b) => ({ ...b, healthy: true }))
      yield* TestClock.adjust("1 second")
      yield* awaitPhase(supervisor, "sim.one", "ready")
    }))

  it.scoped("an invocation timeout streak also counts toward degraded", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* harness({ ready: true, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      yield* supervisor.invocationTimedOut("sim.one")
      yield* supervisor.invocationTimedOut("sim.one")
      yield* awaitPhase(supervisor, "sim.one", "degraded")
    }))

  it.scoped("an incompatible module report fails the component with that reason", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* harness({ ready: true, healthy: true, contractVersion: "9" })
      yield* supervisor.start("sim.one")
      yield* control.nextLaunch
      const view = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(view.last_error).toBe("incompatible module: module speaks middleware contract 9, this host speaks 1")
      expect(yield* control.running).toEqual([])
    }))

  it.scoped("stop escalates to KILL after stop_timeout_ms for a module that ignores TERM", () =>
    Effect.gen(function*() {
      const { supervisor, control, events } = yield* harness({ ready: true, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      const launch = yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      yield* control.ignoreTerm(launch.pid)
      const stopping = yield* Effect.fork(supervisor.stop("sim.one"))
      yield* awaitPhase(supervisor, "sim.one", "stopping")
      yield* TestClock.adjust("500 millis")
      yield* awaitPhase(supervisor, "sim.one", "stopped")
      yield* stopping.await
      const stopped = (yield* Ref.get(events)).at(-1)
      expect(stopped?.reason).toContain("killed")
      expect(yield* control.running).toEqual([])
    }))

  it.scoped("gives each run a fresh token in its environment only, routes with it while it runs, and forgets it after", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* harness({ ready: true, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      const first = yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      const token = first.spec.env["CORRAL_MODULE_TOKEN"] ?? ""
      expect(token).toMatch(/^[0-9a-f]{64}$/)
      expect((yield* supervisor.route("sim.one")).token).toBe(token)
      expect([first.spec.executable, ...first.spec.args].join(" ")).not.toContain(token)
      expect(JSON.stringify(yield* supervisor.get("sim.one"))).not.toContain(token)
      yield* control.crash(first.pid, 1)
      yield* awaitPhase(supervisor, "sim.one", "starting")
      expect((yield* supervisor.route("sim.one")).token).toBeNull()
      yield* TestClock.adjust("1 second")
      const second = yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      const next = second.spec.env["CORRAL_MODULE_TOKEN"]
      expect(next).not.toBe(token)
      expect((yield* supervisor.route("sim.one")).token).toBe(next)
      yield* supervisor.stop("sim.one")
      expect((yield* supervisor.route("sim.one")).token).toBeNull()
    }))

  it.scoped("http.transport unix: a socket in the host's 0700 run/modules, no port, and {port} in the launch is refused", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* harness({ ready: true, healthy: true, contractVersion: "1" }, {
        http: { ...component.http, transport: "unix" },
        launch: { executable: "/bin/true", args: ["--socket", "{socket}"] }
      })
      yield* supervisor.start("sim.one")
      const launch = yield* control.nextLaunch
      const socketPath = launch.spec.env["CORRAL_MODULE_SOCKET"] ?? ""
      expect(socketPath.endsWith(Path.join("run", "modules", "sim.one.sock"))).toBe(true)
      expect(launch.spec.args).toEqual(["--socket", socketPath])
      expect(launch.spec.env["CORRAL_MODULE_PORT"]).toBeUndefined()
      expect(Fs.statSync(Path.dirname(socketPath)).mode & 0o777).toBe(0o700)
      yield* awaitPhase(supervisor, "sim.one", "ready")
      expect((yield* supervisor.route("sim.one")).endpoint).toBe(`unix:${socketPath}`)

      const refused = yield* harness({ ready: true, healthy: true, contractVersion: "1" }, {
        http: { ...component.http, transport: "unix" },
        launch: { executable: "/bin/true", args: ["--port", "{port}"] }
      })
      yield* refused.supervisor.start("sim.one")
      const failed = yield* awaitPhase(refused.supervisor, "sim.one", "failed")
      expect(failed.last_error).toContain("launch uses {port} but http.transport is \"unix\"")
      expect(yield* refused.control.launches).toEqual([])
    }))
})
