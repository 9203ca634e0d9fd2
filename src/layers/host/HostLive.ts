/**
 * The host as a Layer graph: paths and config → event feed → traces (also published as events and
 * counted in metrics) → supervisor and broker → metrics → executors → hooks → reload → the control
 * server. Built in that order and released in reverse when the layer's scope closes: the control
 * server drains first, then components and backends stop, then traces close.
 */
import { Context, Effect, Layer } from "effect"
import type { BackendRegistry } from "../../services/broker/BackendRegistry.js"
import type { Broker } from "../../services/broker/Broker.js"
import type { ControlApi } from "../../services/host/ControlApi.js"
import { ConfigLoader } from "../../services/host/ConfigLoader.js"
import type { CurrentConfig, EffectiveConfig } from "../../services/host/EffectiveConfig.js"
import { type Executors, InProcessFunctions, type InProcessFunction } from "../../services/host/Executor.js"
import type { HookRunner } from "../../services/host/HookRunner.js"
import type { HostReload } from "../../services/host/HostReload.js"
import type { HostEvents } from "../../services/host/HostEvents.js"
import type { HostMetrics } from "../../services/host/HostMetrics.js"
import type { ConfigError } from "../../services/host/HostConfig.js"
import type { HostAlreadyRunning, HostLockError } from "../../services/host/HostLock.js"
import { type DataDirError, HostPaths } from "../../services/host/HostPaths.js"
import type { ModuleClient } from "../../services/host/ModuleClient.js"
import type { ProcessLauncher } from "../../services/host/ProcessLauncher.js"
import type { Supervisor } from "../../services/host/Supervisor.js"
import { type LifecycleEvent, TraceLog } from "../../services/host/Traces.js"
import type { BoundedServerConfigError, ServeError } from "../../services/server/BoundedServer.js"
import type { LoopbackPorts } from "../../services/system/LoopbackPorts.js"
import { BrokerBackendsLive, BrokerLive } from "../broker/Broker.js"
import { LoopbackPortsLive } from "../system/LoopbackPorts.js"
import { ConfigLoaderLive } from "./config/ConfigLoader.js"
import type { StreamTiming } from "./control/ControlDependencies.js"
import { makeControlApiLive } from "./ControlServer.js"
import { ExecutorsLive } from "./executors/HostExecutors.js"
import { hostDefaults } from "./hostDefaults.js"
import { ConfigAtStartLive } from "./CurrentConfig.js"
import { HookRunnerLive } from "./HookRunner.js"
import { HostEventsLive, withHostEvents } from "./HostEvents.js"
import { HostMetricsLive, withHostMetrics } from "./HostMetrics.js"
import { HostLockLive } from "./HostLock.js"
import { HostPathsLive } from "./HostPaths.js"
import { HostReloadLive } from "./HostReload.js"
import { ProcessLauncherLive } from "./launcher/ProcessLauncher.js"
import { ModuleClientLive } from "./ModuleClient.js"
import { SupervisorLive } from "./supervisor/Supervisor.js"
import { TraceLogLive } from "./TraceLog.js"

/** Where the host lives and what it may run in process. */
export interface HostOptions {
  readonly dataDir: string
  /** The bundled modules (`modules/` of this package). */
  readonly modulesDir: string
  /** Functions `in_process` components may name. */
  readonly inProcess?: ReadonlyMap<string, InProcessFunction>
  /** Called with every lifecycle event, after it is traced (`corral up` prints them). */
  readonly onLifecycle?: (event: LifecycleEvent) => Effect.Effect<void>
  /** What the broker's `admin shutdown` does (`corral up` stops the whole host). */
  readonly onShutdownRequest?: Effect.Effect<void>
  /** The control API's event-stream and log-follow timing (tests shorten it); default 15 s heartbeats, 1 h streams. */
  readonly controlStreams?: StreamTiming
}

/** Everything a running host provides. */
export type HostServices =
  | ControlApi
  | HostReload
  | HookRunner
  | Executors
  | Supervisor
  | Broker
  | BackendRegistry
  | TraceLog
  | HostEvents
  | HostMetrics
  | EffectiveConfig
  | CurrentConfig
  | HostPaths

/** What can stop a host from starting: its config, another host on its data dir, its control server's address. */
export type HostStartError = ConfigError | DataDirError | HostAlreadyRunning | HostLockError | ServeError | BoundedServerConfigError

/** The effective config, loaded once at start (factory fragments, host defaults, operator fragments); reloads replace `CurrentConfig`. */
export const EffectiveConfigLive: Layer.Layer<EffectiveConfig | CurrentConfig, ConfigError, ConfigLoader> = ConfigAtStartLive

/** The config loader of a data directory, with the host's own defaults between factory and operator fragments. */
export const HostConfigLoaderLive = (options: { readonly dataDir: string; readonly modulesDir: string }): Layer.Layer<ConfigLoader> =>
  ConfigLoaderLive({ modulesDir: options.modulesDir, dataDir: options.dataDir, hostDefaults })

/** The broker on `run/broker.sock` with its backend registry; `admin shutdown` does `onShutdown`. */
const BrokerFor = (
  options: HostOptions
): Layer.Layer<Broker | BackendRegistry, ServeError | BoundedServerConfigError, ProcessLauncher | LoopbackPorts> =>
  BrokerLive({
    dataDir: options.dataDir,
    ...(options.onShutdownRequest === undefined ? {} : { onShutdown: options.onShutdownRequest })
  }).pipe(Layer.provideMerge(BrokerBackendsLive(options.dataDir)))

/** The trace log, also handing each lifecycle event to `listener` (it lives as long as the trace does). */
const withLifecycleListener = <E, R>(
  traces: Layer.Layer<TraceLog, E, R>,
  listener: ((event: LifecycleEvent) => Effect.Effect<void>) | undefined
): Layer.Layer<TraceLog, E, R> =>
  listener === undefined ? traces : Layer.map(traces, (context) => {
    const inner = Context.get(context, TraceLog)
    return Context.make(TraceLog, { ...inner, lifecycle: (event) => Effect.zipRight(inner.lifecycle(event), listener(event)) })
  })

/**
 * The host on the process launcher, module client and port allocator it is given: tests provide
 * simulated ones (and `TestClock`); `HostLive` provides the real ones.
 */
export const HostServicesLive = (
  options: HostOptions
): Layer.Layer<HostServices, HostStartError, ProcessLauncher | ModuleClient | LoopbackPorts> => {
  // The config is loaded before anything is created: an invalid config starts nothing, not even folders.
  // Then the lock: a second host on the same data dir stops here, having changed nothing.
  const base = HostLockLive.pipe(
    Layer.provideMerge(HostPathsLive(options)),
    Layer.provideMerge(EffectiveConfigLive.pipe(Layer.provide(HostConfigLoaderLive(options))))
  )
  return makeControlApiLive(options.controlStreams === undefined ? {} : { timing: options.controlStreams }).pipe(
    Layer.provideMerge(HostReloadLive.pipe(Layer.provide(HostConfigLoaderLive(options)))),
    Layer.provideMerge(HookRunnerLive),
    Layer.provideMerge(ExecutorsLive),
    Layer.provideMerge(HostMetricsLive),
    Layer.provideMerge(Layer.merge(SupervisorLive, BrokerFor(options))),
    Layer.provideMerge(withLifecycleListener(withHostEvents(withHostMetrics(TraceLogLive)), options.onLifecycle)),
    // The event feed outlives everything that publishes to it (traces, supervisor, broker).
    Layer.provideMerge(HostEventsLive),
    Layer.provideMerge(base),
    Layer.provide(Layer.succeed(InProcessFunctions, options.inProcess ?? new Map()))
  )
}

/** The host on real processes, real HTTP to its modules and one loopback port allocator. */
export const HostLive = (options: HostOptions): Layer.Layer<HostServices, HostStartError> =>
  HostServicesLive(options).pipe(Layer.provide(Layer.mergeAll(ProcessLauncherLive, ModuleClientLive, LoopbackPortsLive)))
