/**
 * The host: layered config → data directory → traces → supervisor → executors and hooks → the
 * control server, and `run/control.json` + `run/control.token` once it listens. Everything is
 * acquired in the caller's scope and released in reverse when it closes.
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Deferred, Effect } from "effect"
import type { Scope } from "effect"
import { makeResourcePressureMonitor } from "../system/ResourcePressure.js"
import type { BoundedServerConfigError, BoundedServerShape, ServeError } from "../../services/server/BoundedServer.js"
import type { BrokerShape } from "../../services/broker/Broker.js"
import type { InProcessFunction, Executor } from "../../services/host/Executor.js"
import type { ConfigError, HostConfig } from "../../services/host/HostConfig.js"
import type { ModuleClient } from "../../services/host/ModuleClient.js"
import type { ProcessLauncher } from "../../services/host/ProcessLauncher.js"
import type { LoopbackPorts } from "../../services/system/LoopbackPorts.js"
import type { LifecycleEvent, SupervisorShape } from "../../services/host/Supervisor.js"
import { ModuleClient as ModuleClientTag } from "../../services/host/ModuleClient.js"
import { serveHandler } from "../server/BoundedServer.js"
import { makeBroker } from "../broker/Broker.js"
import { loadHostConfig, type LoadedConfig } from "./ConfigLoader.js"
import { controlApi } from "./ControlApi.js"
import { makeExecutor } from "./Executors.js"
import { hookSpec, runHook } from "./HookRunner.js"
import { hostDefaults } from "./hostDefaults.js"
import { makeSupervisor } from "./Supervisor.js"
import { makeTraceLogs } from "./TraceLog.js"

/** Where the host lives and what it may run in process. */
export interface HostOptions {
  readonly dataDir: string
  /** The bundled modules (`modules/` of this package). */
  readonly modulesDir: string
  /** Functions `in_process` components may name. */
  readonly inProcess?: ReadonlyMap<string, InProcessFunction>
  /** Called with every lifecycle event (the CLI prints them for the person watching). */
  readonly onLifecycle?: (event: LifecycleEvent) => Effect.Effect<void>
  /** What the broker's `admin shutdown` does (the CLI stops the whole host). */
  readonly onShutdownRequest?: Effect.Effect<void>
}

/** A running host. */
export interface RunningHost {
  readonly url: string
  readonly config: HostConfig
  readonly loaded: LoadedConfig
  readonly supervisor: SupervisorShape
  readonly control: BoundedServerShape
  readonly broker: BrokerShape
  readonly tokenFile: string
}

/** The files the host owns under its data directory. */
export const hostPaths = (dataDir: string) => ({
  config: Path.join(dataDir, "config"),
  run: Path.join(dataDir, "run"),
  controlJson: Path.join(dataDir, "run", "control.json"),
  controlToken: Path.join(dataDir, "run", "control.token"),
  logs: Path.join(dataDir, "logs"),
  trace: Path.join(dataDir, "trace")
})

const prepareDataDir = (dataDir: string) =>
  Effect.sync(() => {
    const paths = hostPaths(dataDir)
    for (const dir of [dataDir, paths.config, paths.logs, paths.trace]) Fs.mkdirSync(dir, { recursive: true })
    Fs.mkdirSync(paths.run, { recursive: true, mode: 0o700 })
    Fs.chmodSync(paths.run, 0o700)
    return paths
  })

/** Writes `file` with `mode` atomically (temp file + rename), so readers never see half of it. */
const writePrivate = (file: string, content: string, mode: number) =>
  Effect.sync(() => {
    const temp = `${file}.${process.pid}.tmp`
    Fs.writeFileSync(temp, content, { mode })
    Fs.renameSync(temp, file)
  })

/** Loads the effective config of a data directory (nothing is started). */
export const loadConfigFor = (options: Pick<HostOptions, "dataDir" | "modulesDir">): Effect.Effect<LoadedConfig, ConfigError> =>
  loadHostConfig({ modulesDir: options.modulesDir, dataDir: options.dataDir, hostDefaults })

/** Starts the host in the current scope; closing the scope drains it. */
export const runHost = (
  options: HostOptions
): Effect.Effect<RunningHost, ConfigError | ServeError | BoundedServerConfigError, ProcessLauncher | ModuleClient | LoopbackPorts | Scope.Scope> =>
  Effect.gen(function*() {
    const loaded = yield* loadConfigFor(options)
    const config = loaded.config
    const paths = yield* prepareDataDir(options.dataDir)
    const traces = yield* makeTraceLogs(options.dataDir, { maxBytes: config.host.trace.max_bytes, keep: config.host.trace.keep })
    const client = yield* ModuleClientTag
    const supervisor = yield* makeSupervisor({
      config,
      dataDir: options.dataDir,
      traceLifecycle: (event) =>
        options.onLifecycle === undefined ? traces.lifecycle(event) : Effect.zipRight(traces.lifecycle(event), options.onLifecycle(event))
    })

    const executors = new Map<string, Executor>()
    for (const [id, component] of Object.entries(config.components)) {
      if (!component.enabled) continue
      const executor = yield* makeExecutor({ ...component, id }, {
        client,
        inProcess: options.inProcess ?? new Map(),
        route: (componentId) =>
          supervisor.route(componentId).pipe(Effect.catchAll(() => Effect.succeed({ phase: "failed" as const, endpoint: null }))),
        env: (componentId) => ({
          CORRAL_MODULE_ID: config.components[componentId]?.module_id ?? componentId,
          CORRAL_COMPONENT_ID: componentId,
          CORRAL_DATA_DIR: options.dataDir
        }),
        logFile: (componentId) => Path.join(paths.logs, `${componentId}.log`),
        onTimeout: (componentId) => supervisor.invocationTimedOut(componentId)
      })
      executors.set(id, executor)
    }
    const hooks = new Map(Object.entries(config.hooks).map(([name, hook]) => [name, hookSpec(name, hook)]))
    const broker = yield* makeBroker({
      dataDir: options.dataDir,
      ...(options.onShutdownRequest === undefined ? {} : { onShutdown: options.onShutdownRequest })
    })

    const token = randomBytes(32).toString("hex")
    yield* writePrivate(paths.controlToken, `${token}\n`, 0o600)
    const started = yield* Deferred.make<BoundedServerShape>()
    const control = yield* serveHandler(
      {
        name: "control",
        host: config.host.control.host,
        port: config.host.control.port,
        maxConnections: config.host.control.max_connections,
        handlerTimeoutMs: config.host.control.handler_timeout_ms
      },
      controlApi({
        token,
        supervisor,
        hooks: {
          names: [...hooks.keys()],
          invoke: (name, envelope) => {
            const spec = hooks.get(name)
            return spec === undefined
              ? Effect.die(new Error(`hook ${name} vanished`))
              : runHook(spec, envelope, (id) => executors.get(id), traces.invocation)
          }
        },
        server: Deferred.await(started),
        broker: broker.snapshot,
        pressure: yield* makeResourcePressureMonitor
      })
    )
    yield* Deferred.succeed(started, control)
    const url = control.address._tag === "Tcp" ? control.address.url : control.address.path
    yield* writePrivate(
      paths.controlJson,
      `${JSON.stringify({ url, pid: process.pid, started_at: new Date().toISOString(), data_dir: options.dataDir }, null, 2)}\n`,
      0o600
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const file of [paths.controlJson, paths.controlToken]) Fs.rmSync(file, { force: true })
      })
    )
    return { url, config, loaded, supervisor, control, broker, tokenFile: paths.controlToken }
  })
