/**
 * The four executor kinds. Each takes a concurrency permit without waiting (`Busy` when none is
 * free), bounds the invocation with a deadline, and decodes the answer with `MiddlewareDecision`:
 * anything but a valid decision is an `ExecutorError` naming the component, never a pass.
 */
import { Effect } from "effect"
import type { ComponentRoute } from "../../../services/host/Component.js"
import type { Executor, InProcessFunction } from "../../../services/host/Executor.js"
import { ConfigError } from "../../../services/host/HostConfig.js"
import type { ModuleClientShape } from "../../../services/host/ModuleClient.js"
import { ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { makeCommandStdioExecutor } from "./CommandStdioExecutor.js"
import { type ExecutorComponent, limitsOf } from "./ExecutorLimits.js"
import { makeLocalHttpExecutor, makeSupervisedHttpExecutor } from "./HttpExecutors.js"
import { makeInProcessExecutor } from "./InProcessExecutor.js"

/** What `makeExecutor` needs beyond the component: the client, the in-process registry, supervisor hooks. */
export interface ExecutorDeps {
  readonly client: ModuleClientShape
  /** `in_process` functions by the name in `function`. */
  readonly inProcess: ReadonlyMap<string, InProcessFunction>
  /** `http_local_json`: the supervisor's current phase, endpoint and launch token of a component. */
  readonly route: (componentId: string) => Effect.Effect<ComponentRoute>
  /** `command_stdio`: the clean environment of a component's process. */
  readonly env: (componentId: string) => Record<string, string>
  /** `command_stdio`: the log file of a component's process. */
  readonly logFile?: (componentId: string) => string
  /** `http_local_json`: reports an invocation timeout to the supervisor. */
  readonly onTimeout?: (componentId: string) => Effect.Effect<void>
}

/** Builds the executor of a component's `kind`; a component missing what its kind needs is a `ConfigError`. */
export const makeExecutor = (
  component: ExecutorComponent,
  deps: ExecutorDeps
): Effect.Effect<Executor, ConfigError, ProcessLauncher> => {
  switch (component.kind) {
    case "in_process": {
      const name = component.function
      const fn = name === undefined ? undefined : deps.inProcess.get(name)
      if (name === undefined || fn === undefined) {
        return Effect.fail(
          new ConfigError({
            file: "effective config",
            path: `components.${component.id}.function`,
            reason: name === undefined
              ? "an in_process component needs function (the name of a registered function)"
              : `no in_process function named "${name}" is registered (known: ${[...deps.inProcess.keys()].join(", ") || "none"})`
          })
        )
      }
      return makeInProcessExecutor(component.id, fn, {
        timeoutMs: limitsOf(component).timeoutMs,
        maxConcurrency: component.max_concurrency
      })
    }
    case "command_stdio": {
      const logFile = deps.logFile?.(component.id)
      return makeCommandStdioExecutor(component, {
        env: deps.env(component.id),
        ...(logFile === undefined ? {} : { logFile })
      })
    }
    case "local_http_json":
      return makeLocalHttpExecutor(component, deps.client)
    case "http_local_json":
      return makeSupervisedHttpExecutor(component, deps.client, deps.route(component.id), deps.onTimeout?.(component.id))
  }
}
