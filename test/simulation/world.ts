/**
 * The simulated world: the host's real supervisor, hook runner, executors, reload and broker backend
 * registry, built as the host builds them (its Layers), on simulated processes, a simulated module
 * transport, a simulated port allocator and an in-memory config loader and trace, all on one
 * deterministic runtime. Everything it sees goes into its `Observations`.
 */
import * as Path from "node:path"
import { Context, Effect, Either, Exit, Layer, Ref, Scope } from "effect"
import { BackendRegistryLive } from "../../src/layers/broker/registry/BackendRegistry.js"
import { ServiceDefinitionsLive } from "../../src/layers/broker/ServiceDefinitions.js"
import { ConfigAtStartLive } from "../../src/layers/host/CurrentConfig.js"
import { ExecutorsLive } from "../../src/layers/host/executors/HostExecutors.js"
import { HookRunnerLive } from "../../src/layers/host/HookRunner.js"
import { HostEventsLive } from "../../src/layers/host/HostEvents.js"
import { hostPaths } from "../../src/layers/host/HostPaths.js"
import { HostReloadLive } from "../../src/layers/host/HostReload.js"
import { makeSimulatedLauncher, type SimulatedProcesses } from "../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { makeSimulatedModuleClient, type SimulatedModules } from "../../src/layers/host/ModuleClientSimulated.js"
import { SupervisorLive } from "../../src/layers/host/supervisor/Supervisor.js"
import { BackendRegistry, type BackendRegistryShape } from "../../src/services/broker/BackendRegistry.js"
import type { Endpoint } from "../../src/services/broker/BrokerProtocol.js"
import { ConfigLoader } from "../../src/services/host/ConfigLoader.js"
import { InProcessFunctions } from "../../src/services/host/Executor.js"
import { HookRunner, type HookRunnerShape } from "../../src/services/host/HookRunner.js"
import { HostPaths } from "../../src/services/host/HostPaths.js"
import { HostReload, type HostReloadShape } from "../../src/services/host/HostReload.js"
import { Supervisor, type SupervisorShape } from "../../src/services/host/Supervisor.js"
import { TraceLog } from "../../src/services/host/Traces.js"
import { LoopbackPorts } from "../../src/services/system/LoopbackPorts.js"
import { type ConfigVariant, configOf } from "./simulatedConfig.js"
import { makeObservations, type Observations } from "./observations.js"
import { makeVirtualRuntime, type VirtualRuntime } from "./virtualRuntime.js"

/** Files shared by every run: a data dir nothing is written to, and the broker's service definitions. */
export interface WorldFiles {
  readonly dataDir: string
  readonly servicesDir: string
}

/** One simulated host and what drives and observes it. */
export interface World {
  readonly runtime: VirtualRuntime
  readonly processes: SimulatedProcesses
  readonly modules: SimulatedModules
  readonly seen: Observations
  readonly supervisor: SupervisorShape
  readonly hooks: HookRunnerShape
  readonly reload: HostReloadShape
  readonly registry: BackendRegistryShape
  /** What the next reload reads. */
  readonly setConfig: (variant: ConfigVariant) => Effect.Effect<void>
  /** Stops the host as its scope's end does: components, then the registry's backends. */
  readonly stopHost: Effect.Effect<void>
}

/** Virtual time starts here (2024-01-01), so deadlines and trace times look like real ones. */
const epoch = 1_704_067_200_000

/**
 * Ports for broker backends, below the kernel's ephemeral range: never one the supervisor's real
 * held sockets get, so an endpoint names one simulated process.
 */
const simulatedPorts = Layer.effect(
  LoopbackPorts,
  Effect.map(Ref.make(1_100), (next) => ({ allocate: Ref.getAndUpdate(next, (port) => port + 1) }))
)

const endpointUrl = (endpoint: Endpoint): string =>
  endpoint.kind === "unix" ? `unix:${endpoint.path}` : `http://${endpoint.host}:${endpoint.port}`

/** Builds a world from `files`, its runtime seeded with `seed`; it starts nothing (see the host-start step). */
export const buildWorld = async (files: WorldFiles, seed: number): Promise<World> => {
  const runtime = makeVirtualRuntime(seed, epoch)
  const seen = makeObservations()
  const fiber = runtime.fork(Effect.gen(function*() {
    const { layer: launcher, control: processes } = yield* makeSimulatedLauncher
    const { layer: client, control: modules } = yield* makeSimulatedModuleClient(processes)
    const config = yield* Ref.make(configOf("base"))
    const loader = Layer.succeed(ConfigLoader, {
      load: Effect.map(Ref.get(config), (loaded) => ({ config: loaded, sources: ["(simulation)"], provenance: () => undefined })),
      validateAll: Effect.succeed([])
    })
    const traces = Layer.succeed(TraceLog, {
      lifecycle: (event) => Effect.sync(() => void seen.lifecycle.push({ seq: seen.next(), at: runtime.now(), event })),
      invocation: () => Effect.void
    })
    const registry = BackendRegistryLive({
      runDir: Path.join(files.dataDir, "run"),
      logsDir: Path.join(files.dataDir, "logs"),
      probeEndpoint: (endpoint) => modules.accepts(endpointUrl(endpoint))
    }).pipe(Layer.provide(ServiceDefinitionsLive(files.servicesDir)))
    // As HostServicesLive composes them, without the control server, the broker's socket and the lock.
    const host = HostReloadLive.pipe(
      Layer.provideMerge(HookRunnerLive),
      Layer.provideMerge(ExecutorsLive),
      Layer.provideMerge(Layer.merge(SupervisorLive, registry)),
      Layer.provideMerge(traces),
      Layer.provideMerge(HostEventsLive),
      Layer.provideMerge(ConfigAtStartLive),
      Layer.provide(Layer.mergeAll(
        loader,
        Layer.succeed(HostPaths, hostPaths(files.dataDir, files.dataDir)),
        Layer.succeed(InProcessFunctions, new Map()),
        launcher,
        client,
        simulatedPorts
      ))
    )
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(host, scope)
    const supervisor = Context.get(context, Supervisor)
    // Invocations and inits, with the phase and pid of their component at the instant they arrive.
    yield* modules.onCall((call) =>
      call.kind === "invoke" || call.kind === "init"
        ? Effect.flatMap(Effect.either(supervisor.get(call.component)), (view) =>
          Effect.sync(() =>
            void seen.calls.push({
              seq: seen.next(),
              call,
              phase: Either.isRight(view) ? view.right.phase : "unknown",
              currentPid: Either.isRight(view) ? view.right.pid : null
            })
          ))
        : Effect.void
    )
    return {
      runtime,
      processes,
      modules,
      seen,
      supervisor,
      hooks: Context.get(context, HookRunner),
      reload: Context.get(context, HostReload),
      registry: Context.get(context, BackendRegistry),
      setConfig: (variant: ConfigVariant) => Ref.set(config, configOf(variant)),
      stopHost: Scope.close(scope, Exit.void)
    } satisfies World
  }))
  await runtime.settle()
  const built = fiber.unsafePoll()
  if (built === null) throw new Error("the simulated host did not build without time passing")
  if (Exit.isFailure(built)) throw new Error(`the simulated host did not build: ${String(built.cause)}`)
  return built.value
}
