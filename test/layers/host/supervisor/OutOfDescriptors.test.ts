/**
 * Running out of descriptors is transient: a launch that meets EMFILE (spawn or port) is retried with
 * backoff, outside the restart budget, and the component never ends `failed` for it.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Ref, Schema, TestClock } from "effect"
import { makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { makeSupervisor } from "../../../../src/layers/host/supervisor/Supervisor.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { HostConfig } from "../../../../src/services/host/HostConfig.js"
import { LaunchError } from "../../../../src/services/host/ProcessLauncher.js"
import type { LifecycleEvent } from "../../../../src/services/host/Traces.js"
import { scriptedModuleClient } from "../../../support/scriptedModules.js"

const component = {
  kind: "http_local_json",
  module_id: "sim",
  launch: { executable: "/bin/true" },
  http: { port: "auto", startup_timeout_ms: 1_000 },
  restart_policy: { mode: "on_failure", max_restarts: 1, window_sec: 60, backoff_initial_ms: 100, backoff_max_ms: 1_000 },
  stop_timeout_ms: 500
}

/** Real time passes (for the port probe's socket) while the TestClock stands still. */
const realPause = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))

describe("Supervisor: out of descriptors", () => {
  it.scoped("retries a launch that meets EMFILE, outside the restart budget, and reaches ready without ever failing", () =>
    Effect.gen(function*() {
      const { layer, control } = yield* makeSimulatedLauncher
      const refusals = yield* Ref.make(3)
      yield* control.scriptLaunch((spec) =>
        Effect.flatMap(Ref.getAndUpdate(refusals, (n) => n - 1), (left) =>
          left > 0
            ? Effect.fail(new LaunchError({ name: spec.name, reason: "Spawn", message: `cannot start "${spec.name}": spawn EMFILE` }))
            : Effect.void))
      const events = yield* Ref.make<ReadonlyArray<LifecycleEvent>>([])
      const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
      const supervisor = yield* makeSupervisor({
        config: Schema.decodeUnknownSync(HostConfig)({ components: { "sim.one": component } }),
        dataDir: yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-emfile-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        ),
        traceLifecycle: (event) => Ref.update(events, (all) => [...all, event])
      }).pipe(Effect.provide(Layer.mergeAll(layer, scriptedModuleClient(behaviour), LoopbackPortsLive)))

      yield* supervisor.start("sim.one")
      let view = yield* supervisor.get("sim.one")
      for (let i = 0; i < 2_000 && view.phase !== "ready" && view.phase !== "failed"; i++) {
        yield* realPause
        yield* TestClock.adjust("100 millis")
        view = yield* supervisor.get("sim.one")
      }
      expect(view.phase).toBe("ready")
      expect(view.restarts).toEqual({ used: 0, left: 1 })
      const seen = (yield* Ref.get(events)).map((event) => event.to)
      expect(seen).not.toContain("failed")
      const retries = (yield* Ref.get(events)).filter((event) => event.reason.includes("out of descriptors"))
      expect(retries.map((event) => event.reason)).toEqual([
        `cannot start "sim.one": spawn EMFILE; the host is out of descriptors, retrying in 100 ms (not counted against the restart budget)`,
        `cannot start "sim.one": spawn EMFILE; the host is out of descriptors, retrying in 200 ms (not counted against the restart budget)`,
        `cannot start "sim.one": spawn EMFILE; the host is out of descriptors, retrying in 400 ms (not counted against the restart budget)`
      ])
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))))
})
