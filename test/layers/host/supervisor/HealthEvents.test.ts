/**
 * `SupervisorLive` publishes every health check on the host's event feed as a `health` event
 * (simulated processes, scripted modules, TestClock).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Ref, TestClock } from "effect"
import { HostEventsLive } from "../../../../src/layers/host/HostEvents.js"
import { hostPaths } from "../../../../src/layers/host/HostPaths.js"
import { makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { SupervisorLive } from "../../../../src/layers/host/supervisor/Supervisor.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { EffectiveConfig } from "../../../../src/services/host/EffectiveConfig.js"
import { HostEvents } from "../../../../src/services/host/HostEvents.js"
import { HostPaths } from "../../../../src/services/host/HostPaths.js"
import { Supervisor } from "../../../../src/services/host/Supervisor.js"
import { TraceLog } from "../../../../src/services/host/Traces.js"
import { scriptedModuleClient } from "../../../support/scriptedModules.js"
import { awaitView, configOf, simulatedComponent } from "../../../support/simulatedSupervisor.js"

describe("SupervisorLive health events", () => {
  it.scoped("publishes one health event per check, with the component, the result and what failed", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-healthev-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const { layer: launcher } = yield* makeSimulatedLauncher
      const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
      const context = yield* Layer.build(
        SupervisorLive.pipe(
          Layer.provideMerge(HostEventsLive),
          Layer.provide(Layer.mergeAll(
            Layer.succeed(EffectiveConfig, configOf({ "sim.one": simulatedComponent })),
            Layer.succeed(HostPaths, hostPaths(dataDir, dataDir)),
            Layer.succeed(TraceLog, { lifecycle: () => Effect.void, invocation: () => Effect.void }),
            launcher,
            scriptedModuleClient(behaviour),
            LoopbackPortsLive
          ))
        )
      )
      const supervisor = yield* Effect.provide(Supervisor, context)
      const events = yield* Effect.provide(HostEvents, context)
      yield* supervisor.start("sim.one")
      yield* awaitView(supervisor, "sim.one", (view) => view.last_health !== null)
      yield* Ref.update(behaviour, (b) => ({ ...b, healthy: false }))
      yield* TestClock.adjust("1 second")
      yield* awaitView(supervisor, "sim.one", (view) => view.last_health?.ok === false)
      const health = (yield* events.recent(100)).flatMap(({ event }) => (event._tag === "health" ? [event] : []))
      expect(health.map(({ component, ok, detail }) => ({ component, ok, detail }))).toEqual([
        { component: "sim.one", ok: true, detail: "200" },
        { component: "sim.one", ok: false, detail: "health path answered 500" }
      ])
      expect(health.every((event) => !Number.isNaN(Date.parse(event.at)))).toBe(true)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))))
})
