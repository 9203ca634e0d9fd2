/**
 * The host's executors: one per enabled component of the config, built by its `kind`; supervised ones
 * route through the supervisor and report invocation timeouts to it. A reload builds the executors of
 * added and changed components beside the ones in use, then swaps the whole set in one assignment;
 * unchanged components keep their executor (and the permits of invocations in flight).
 */
import * as Path from "node:path"
import { isDeepStrictEqual } from "node:util"
import { Context, Effect, Layer } from "effect"
import { CurrentConfig } from "../../../services/host/EffectiveConfig.js"
import { type Executor, Executors, InProcessFunctions } from "../../../services/host/Executor.js"
import { ExecutorsReload, type PreparedExecutors } from "../../../services/host/ExecutorsReload.js"
import type { ConfigError, HostConfig } from "../../../services/host/HostConfig.js"
import { HostPaths } from "../../../services/host/HostPaths.js"
import { ModuleClient } from "../../../services/host/ModuleClient.js"
import type { ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { Supervisor } from "../../../services/host/Supervisor.js"
import { type ExecutorDeps, makeExecutor } from "./Executors.js"

/** No `in_process` functions: the default of `corral up`. */
export const NoInProcessFunctions: Layer.Layer<InProcessFunctions> = Layer.succeed(InProcessFunctions, new Map())

/** The executors in use and the config each was built from. */
interface ExecutorSet {
  readonly executors: ReadonlyMap<string, Executor>
  readonly builtFrom: HostConfig["components"]
}

/**
 * Builds every enabled component's executor, and rebuilds them on reload; a component its kind cannot
 * run is a `ConfigError` (at start: the host does not start; on reload: the reload is refused).
 */
export const ExecutorsLive: Layer.Layer<
  Executors | ExecutorsReload,
  ConfigError,
  CurrentConfig | HostPaths | ModuleClient | ProcessLauncher | Supervisor | InProcessFunctions
> = Layer.effectContext(
  Effect.gen(function*() {
    const paths = yield* HostPaths
    const client = yield* ModuleClient
    const supervisor = yield* Supervisor
    const inProcess = yield* InProcessFunctions
    // Captured: a reload builds executors from its own fiber, which has no launcher in its context.
    const launcher = yield* Effect.context<ProcessLauncher>()

    const depsFor = (config: HostConfig): ExecutorDeps => ({
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

    /** The executors `config` needs, reusing those of `previous` whose component config is the same. */
    const build = (config: HostConfig, previous: ExecutorSet | undefined) =>
      Effect.gen(function*() {
        const deps = depsFor(config)
        const executors = new Map<string, Executor>()
        const rebuilt: Array<string> = []
        for (const [id, component] of Object.entries(config.components)) {
          if (!component.enabled) continue
          const kept = previous?.executors.get(id)
          if (kept !== undefined && isDeepStrictEqual(previous?.builtFrom[id], component)) {
            executors.set(id, kept)
            continue
          }
          executors.set(id, yield* makeExecutor({ ...component, id }, deps))
          rebuilt.push(id)
        }
        const set: ExecutorSet = { executors, builtFrom: config.components }
        return { set, rebuilt }
      }).pipe(Effect.provide(launcher))

    // `Executors.get` is synchronous (the hook runner looks a step's executor up mid-chain), so the set
    // in use is one variable, replaced whole: a lookup sees the old set or the new one, never a mix.
    const started = yield* (yield* CurrentConfig).get
    let inUse = (yield* build(started.config, undefined)).set

    // One reload at a time (HostReload's lock): nothing else replaces `inUse` between prepare and commit.
    const prepare = (config: HostConfig): Effect.Effect<PreparedExecutors, ConfigError> =>
      Effect.map(build(config, inUse), ({ rebuilt, set }) => ({
        rebuilt,
        commit: Effect.sync(() => {
          inUse = set
        })
      }))

    return Context.make(Executors, { get: (componentId) => inUse.executors.get(componentId) }).pipe(
      Context.add(ExecutorsReload, { prepare })
    )
  })
)
