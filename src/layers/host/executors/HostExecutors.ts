/**
 * The host's executors: one per enabled component of the effective config, built by its `kind`;
 * supervised ones route through the supervisor and report invocation timeouts to it.
 */
import * as Path from "node:path"
import { Effect, Layer } from "effect"
import { EffectiveConfig } from "../../../services/host/EffectiveConfig.js"
import { type Executor, Executors, InProcessFunctions } from "../../../services/host/Executor.js"
import type { ConfigError } from "../../../services/host/HostConfig.js"
import { HostPaths } from "../../../services/host/HostPaths.js"
import { ModuleClient } from "../../../services/host/ModuleClient.js"
import type { ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { Supervisor } from "../../../services/host/Supervisor.js"
import { makeExecutor } from "./Executors.js"

/** No `in_process` functions: the default of `corral up`. */
export const NoInProcessFunctions: Layer.Layer<InProcessFunctions> = Layer.succeed(InProcessFunctions, new Map())

/** Builds every enabled component's executor; a component its kind cannot run is a `ConfigError`. */
export const ExecutorsLive: Layer.Layer<
  Executors,
  ConfigError,
  EffectiveConfig | HostPaths | ModuleClient | ProcessLauncher | Supervisor | InProcessFunctions
> = Layer.effect(
  Executors,
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    const paths = yield* HostPaths
    const client = yield* ModuleClient
    const supervisor = yield* Supervisor
    const inProcess = yield* InProcessFunctions
    const executors = new Map<string, Executor>()
    for (const [id, component] of Object.entries(config.components)) {
      if (!component.enabled) continue
      const executor = yield* makeExecutor({ ...component, id }, {
        client,
        inProcess,
        route: (componentId) =>
          supervisor.route(componentId).pipe(Effect.catchAll(() => Effect.succeed({ phase: "failed" as const, endpoint: null, token: null }))),
        env: (componentId) => ({
          CORRAL_MODULE_ID: config.components[componentId]?.module_id ?? componentId,
          CORRAL_COMPONENT_ID: componentId,
          CORRAL_DATA_DIR: paths.dataDir
        }),
        logFile: (componentId) => Path.join(paths.logs, `${componentId}.log`),
        onTimeout: (componentId) => supervisor.invocationTimedOut(componentId)
      })
      executors.set(id, executor)
    }
    return { get: (componentId) => executors.get(componentId) }
  })
)
