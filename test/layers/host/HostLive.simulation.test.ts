/**
 * The whole host as its Layer graph, with the simulated process launcher, a scripted module transport
 * and `TestClock` in place of the live ones: the bundled components start, one crashes and is
 * restarted in virtual time, hooks run through the restarted module, and the scope's end stops all.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Logger, Ref, Scope, TestClock } from "effect"
import { HostServicesLive } from "../../../src/layers/host/HostLive.js"
import { makeSimulatedLauncher } from "../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { LoopbackPortsLive, makeLoopbackPorts } from "../../../src/layers/system/LoopbackPorts.js"
import { BackendRegistry } from "../../../src/services/broker/BackendRegistry.js"
import type { Phase } from "../../../src/services/host/Component.js"
import { ControlApi } from "../../../src/services/host/ControlApi.js"
import { HookRunner } from "../../../src/services/host/HookRunner.js"
import { Supervisor } from "../../../src/services/host/Supervisor.js"
import { LoopbackPorts } from "../../../src/services/system/LoopbackPorts.js"
import { makeEchoServices } from "../../support/brokerFixture.js"
import { scriptedModuleClient } from "../../support/scriptedModules.js"
import { awaitPhases, realPause } from "../../support/simulatedSupervisor.js"

const bundledModules = Path.resolve(import.meta.dirname, "../../../modules")

const tempDataDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-hostsim-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("HostLive in simulation (simulated processes, scripted modules, TestClock)", () => {
  it.scoped("starts the bundled components, restarts a crashed one in virtual time, and stops every process at the end", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDataDir
      const { layer: launcher, control } = yield* makeSimulatedLauncher
      const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
      const host = HostServicesLive({ dataDir, modulesDir: bundledModules }).pipe(
        Layer.provide(Layer.mergeAll(launcher, scriptedModuleClient(behaviour), LoopbackPortsLive))
      )
      const hostScope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(host, hostScope)
      const supervisor = yield* Effect.provide(Supervisor, context)
      const hooks = yield* Effect.provide(HookRunner, context)
      const controlApi = yield* Effect.provide(ControlApi, context)
      expect(controlApi.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(Fs.existsSync(Path.join(dataDir, "run", "control.json"))).toBe(true)

      const starting = yield* Effect.fork(supervisor.startAll)
      yield* awaitPhases(supervisor, { "middleware.dator": "ready", "middleware.arca": "ready" })
      yield* Fiber.join(starting)
      const launches = yield* control.launches
      expect(launches.map((l) => l.spec.name).sort()).toEqual(["middleware.arca", "middleware.dator"])
      const ports = launches.map((l) => l.spec.env["CORRAL_MODULE_PORT"])
      expect(new Set(ports).size).toBe(2)

      const dator = launches.find((l) => l.spec.name === "middleware.dator")
      if (dator === undefined) return yield* Effect.dieMessage("dator was not launched")
      yield* control.crash(dator.pid, 1)
      yield* awaitPhases(supervisor, { "middleware.dator": "starting" })
      // Nothing is routed to a starting component: the hook fails closed, naming it.
      const refused = yield* hooks.invoke("ingress", { id: "e1", hook: "ingress", subject: "user:1", payload: {} })
      expect(refused.decision.decision).toBe("deny")
      expect(refused.steps[0]).toMatchObject({ component: "middleware.dator", outcome: "failed" })
      // The first restart waits its backoff (20 ms, up to 20% jitter) on the TestClock.
      yield* TestClock.adjust("30 millis")
      const views = yield* awaitPhases(supervisor, { "middleware.dator": "ready", "middleware.arca": "ready" })
      expect(views.find((v) => v.id === "middleware.dator")?.restarts).toEqual({ used: 1, left: 2 })
      expect(yield* control.launches).toHaveLength(3)
      const allowed = yield* hooks.invoke("ingress", { id: "e2", hook: "ingress", subject: "user:1", payload: {} })
      expect(allowed.decision.decision).toBe("allow")
      expect(allowed.steps.map((s) => s.outcome)).toEqual(["allow", "allow"])

      yield* Scope.close(hostScope, Exit.void)
      expect(yield* control.running).toEqual([])
      expect(Fs.existsSync(Path.join(dataDir, "run", "control.json"))).toBe(false)
      const trace = Fs.readFileSync(Path.join(dataDir, "trace", "lifecycle.jsonl"), "utf8").trim().split("\n")
      expect(trace.map((line) => JSON.parse(line) as { component: string; to: Phase }).filter((e) => e.component === "middleware.dator").map((e) => e.to))
        .toEqual(["starting", "ready", "starting", "ready", "stopping", "stopped"])
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))))

  it.scoped("a module start and a broker launch at the same moment draw from the host's one port allocator and get different ports", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDataDir
      makeEchoServices(dataDir).define("web", { endpoint: { kind: "tcp" } })
      const { layer: launcher, control } = yield* makeSimulatedLauncher
      const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
      const handedOut = yield* Ref.make<ReadonlyArray<number>>([])
      const recordingPorts = Layer.effect(
        LoopbackPorts,
        Effect.map(makeLoopbackPorts, (ports) => ({ allocate: Effect.tap(ports.allocate, (port) => Ref.update(handedOut, (all) => [...all, port])) }))
      )
      const context = yield* Layer.build(
        HostServicesLive({ dataDir, modulesDir: bundledModules }).pipe(
          Layer.provide(Layer.mergeAll(launcher, scriptedModuleClient(behaviour), recordingPorts))
        )
      )
      const supervisor = yield* Effect.provide(Supervisor, context)
      const registry = yield* Effect.provide(BackendRegistry, context)
      yield* Effect.fork(registry.acquire("web"))
      yield* supervisor.start("middleware.dator")
      while ((yield* control.launches).length < 2) yield* realPause
      const launches = yield* control.launches
      const modulePort = Number(launches.find((l) => l.spec.name === "middleware.dator")?.spec.env["CORRAL_MODULE_PORT"])
      const backendEndpoint = launches.find((l) => l.spec.name.startsWith("backend web"))?.spec.env["CORRAL_BACKEND_ENDPOINT"] ?? ""
      const backendPort = Number(backendEndpoint.split(":").at(-1))
      expect([...(yield* Ref.get(handedOut))].sort()).toEqual([modulePort, backendPort].sort())
      expect(modulePort).not.toBe(backendPort)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))))
})
