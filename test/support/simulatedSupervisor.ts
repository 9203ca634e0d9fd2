/**
 * A supervisor on simulated processes and scripted modules, for tests under `TestClock`: it records the
 * lifecycle trace and the health results it publishes, and `close` ends it as a host stop would.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Exit, Layer, Ref, Schema, Scope } from "effect"
import { makeSimulatedLauncher, type SimulatedProcesses } from "../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import type { HealthResult } from "../../src/layers/host/supervisor/HealthWatch.js"
import { makeSupervisor } from "../../src/layers/host/supervisor/Supervisor.js"
import { LoopbackPortsLive } from "../../src/layers/system/LoopbackPorts.js"
import type { ComponentView, Phase } from "../../src/services/host/Component.js"
import { HostConfig } from "../../src/services/host/HostConfig.js"
import type { SupervisorShape } from "../../src/services/host/Supervisor.js"
import type { LifecycleEvent } from "../../src/services/host/Traces.js"
import { type ModuleBehaviour, scriptedModuleClient } from "./scriptedModules.js"

/** A supervised component for simulations: short timeouts, a budget of 2, health every second. */
export const simulatedComponent = {
  kind: "http_local_json",
  module_id: "sim",
  launch: { executable: "/bin/true" },
  http: { port: "auto", startup_timeout_ms: 1_000, health_interval_ms: 1_000, unhealthy_threshold: 2 },
  restart_policy: { mode: "on_failure", max_restarts: 2, window_sec: 60, backoff_initial_ms: 100, backoff_max_ms: 1_000 },
  stop_timeout_ms: 500
}

/** Real time passes (the port probe's socket) while the TestClock stands still. */
export const realPause = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))

/** Waits (bounded, in real time) until `id` is in `phase`; dies naming what it is instead. */
export const awaitPhase = (supervisor: SupervisorShape, id: string, phase: Phase) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400; i++) {
      const view = yield* supervisor.get(id)
      if (view.phase === phase) return view
      yield* realPause
    }
    const view = yield* supervisor.get(id)
    return yield* Effect.dieMessage(`expected ${id} to reach ${phase}, it is ${view.phase} (${view.last_error ?? ""})`)
  })

/** Waits (bounded, in real time) until every component of `wanted` is in its phase; dies naming what they are instead. */
export const awaitPhases = (supervisor: SupervisorShape, wanted: Readonly<Record<string, Phase>>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2_000; i++) {
      const views = yield* supervisor.list
      if (Object.entries(wanted).every(([id, phase]) => views.find((v) => v.id === id)?.phase === phase)) return views
      yield* realPause
    }
    const views = yield* supervisor.list
    return yield* Effect.dieMessage(`expected ${JSON.stringify(wanted)}, got ${JSON.stringify(views.map((v) => [v.id, v.phase, v.last_error]))}`)
  })

/** Waits (bounded, in real time) until the view of `id` passes `check`; dies with the view it has instead. */
export const awaitView = (supervisor: SupervisorShape, id: string, check: (view: ComponentView) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400; i++) {
      const view = yield* supervisor.get(id)
      if (check(view)) return view
      yield* realPause
    }
    return yield* Effect.dieMessage(`${id} never reached the state the test waits for: ${JSON.stringify(yield* supervisor.get(id))}`)
  })

/** The decoded config of `components` (raw JSON values). */
export const configOf = (components: Readonly<Record<string, unknown>>, modules: Readonly<Record<string, unknown>> = {}): HostConfig =>
  Schema.decodeUnknownSync(HostConfig)({ components, modules })

/** What a test drives and observes. */
export interface SimulatedSupervisor {
  readonly supervisor: SupervisorShape
  readonly control: SimulatedProcesses
  readonly behaviour: Ref.Ref<ModuleBehaviour>
  /** Every lifecycle event traced so far, oldest first. */
  readonly trace: Effect.Effect<ReadonlyArray<LifecycleEvent>>
  /** Every health result published so far, oldest first. */
  readonly healthResults: Effect.Effect<ReadonlyArray<HealthResult>>
  /** Ends the supervisor as a host stop does (components stopped, dependents first). */
  readonly close: Effect.Effect<void>
}

/** Builds a supervisor of `config` for the life of the caller's scope (or until `close`). */
export const simulatedSupervisor = (
  config: HostConfig,
  initial: ModuleBehaviour = { ready: true, healthy: true, contractVersion: "1" }
): Effect.Effect<SimulatedSupervisor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { layer, control } = yield* makeSimulatedLauncher
    const behaviour = yield* Ref.make(initial)
    const trace = yield* Ref.make<ReadonlyArray<LifecycleEvent>>([])
    const health = yield* Ref.make<ReadonlyArray<HealthResult>>([])
    const dataDir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-simsup-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const supervisor = yield* makeSupervisor({
      config,
      dataDir,
      traceLifecycle: (event) => Ref.update(trace, (all) => [...all, event]),
      publishHealth: (result) => Ref.update(health, (all) => [...all, result])
    }).pipe(
      Effect.provide(Layer.mergeAll(layer, scriptedModuleClient(behaviour), LoopbackPortsLive)),
      Scope.extend(scope)
    )
    return { supervisor, control, behaviour, trace: Ref.get(trace), healthResults: Ref.get(health), close: Scope.close(scope, Exit.void) }
  })
