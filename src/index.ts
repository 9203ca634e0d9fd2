/**
 * Corral's public surface, one namespace per module (as `@effect/platform` does). `X` is a service
 * module — its Tag, shapes, errors and schemas; `XLayer` is how it is made — constructors and
 * `*Live`/`*Simulated` layers. Pure policies are namespaces of their own. What only the host uses
 * inside (config stages, launcher pieces, registry state, the control API's routes) is not exported.
 */

// The bounded server
export * as Actor from "./services/server/Actor.js"
export * as ActorLayer from "./layers/server/Actor.js"
export * as BoundedConnection from "./services/server/BoundedConnection.js"
export * as BoundedHttp from "./services/server/BoundedHttp.js"
export * as BoundedServer from "./services/server/BoundedServer.js"
export * as BoundedServerLayer from "./layers/server/BoundedServer.js"
export * as RouteAlarms from "./services/server/RouteAlarms.js"
export * as RouteAlarmsLayer from "./layers/server/RouteAlarms.js"

// The host: config, supervision, executors, hooks, traces, control API
export * as Component from "./services/host/Component.js"
export * as ConfigLoader from "./services/host/ConfigLoader.js"
export * as ConfigLoaderLayer from "./layers/host/config/ConfigLoader.js"
export * as ConfigSchema from "./services/host/ConfigSchema.js"
export * as ControlApi from "./services/host/ControlApi.js"
export * as ControlApiSpec from "./services/host/ControlApiSpec.js"
export * as EffectiveConfig from "./services/host/EffectiveConfig.js"
export * as CurrentConfigLayer from "./layers/host/CurrentConfig.js"
export * as Executor from "./services/host/Executor.js"
export * as ExecutorLayer from "./layers/host/executors/Executors.js"
export * as ExecutorsReload from "./services/host/ExecutorsReload.js"
export * as HookRunner from "./services/host/HookRunner.js"
export * as HookRunnerLayer from "./layers/host/HookRunner.js"
export * as HostConfig from "./services/host/HostConfig.js"
export * as HostLayer from "./layers/host/HostLive.js"
export * as HostEvents from "./services/host/HostEvents.js"
export * as HostEventsLayer from "./layers/host/HostEvents.js"
export * as HostMetrics from "./services/host/HostMetrics.js"
export * as HostMetricsLayer from "./layers/host/HostMetrics.js"
export * as HostLock from "./services/host/HostLock.js"
export * as HostReload from "./services/host/HostReload.js"
export * as HostReloadLayer from "./layers/host/HostReload.js"
export * as HostPaths from "./services/host/HostPaths.js"
export * as MiddlewareContract from "./services/host/MiddlewareContract.js"
export * as ModuleClient from "./services/host/ModuleClient.js"
export * as ModuleClientLayer from "./layers/host/ModuleClient.js"
export * as ProcessLauncher from "./services/host/ProcessLauncher.js"
export * as ProcessLauncherLayer from "./layers/host/launcher/ProcessLauncher.js"
export * as ProcessLauncherSimulated from "./layers/host/launcher/ProcessLauncherSimulated.js"
export * as Supervisor from "./services/host/Supervisor.js"
export * as SupervisorLayer from "./layers/host/supervisor/Supervisor.js"
export * as Traces from "./services/host/Traces.js"
export * as TraceLogLayer from "./layers/host/TraceLog.js"

// The broker and its client
export * as BackendRegistry from "./services/broker/BackendRegistry.js"
export * as BackendRegistryLayer from "./layers/broker/registry/BackendRegistry.js"
export * as Broker from "./services/broker/Broker.js"
export * as BrokerLayer from "./layers/broker/Broker.js"
export * as BrokerClient from "./services/broker/BrokerClient.js"
export * as BrokerClientLayer from "./layers/broker/BrokerClient.js"
export * as BrokerFraming from "./layers/broker/BrokerFraming.js"
export * as BrokerProtocol from "./services/broker/BrokerProtocol.js"
export * as ServiceDefinition from "./services/broker/ServiceDefinition.js"
export * as ServiceDefinitionsLayer from "./layers/broker/ServiceDefinitions.js"

// The machine: ports, /proc readings, Prometheus text, metric names
export * as LoopbackPorts from "./services/system/LoopbackPorts.js"
export * as LoopbackPortsLayer from "./layers/system/LoopbackPorts.js"
export * as MetricNames from "./services/system/MetricNames.js"
export * as ProcessMain from "./layers/system/ProcessMain.js"
export * as ProcessMetrics from "./layers/system/ProcessMetrics.js"
export * as PrometheusText from "./layers/system/PrometheusText.js"
export * as ResourcePressure from "./layers/system/ResourcePressure.js"
export * as ShutdownUrgency from "./services/system/ShutdownUrgency.js"
export * as FileTrust from "./services/system/FileTrust.js"
export * as JsonDepth from "./services/system/JsonDepth.js"

// Pure policies (state + event + now → state + decision)
export * as BackendSlot from "./services/policies/BackendSlot.js"
export * as FdPressure from "./services/policies/FdPressure.js"
export * as RateLimit from "./services/policies/RateLimit.js"
export * as RestartBudget from "./services/policies/RestartBudget.js"
export * as RouteAlarm from "./services/policies/RouteAlarm.js"
export * as SpawnBudget from "./services/policies/SpawnBudget.js"
