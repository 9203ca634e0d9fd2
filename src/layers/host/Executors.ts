/**
 * The four executor kinds. Each takes a concurrency permit without waiting (`Busy` when none is
 * free), bounds the invocation with a deadline, and decodes the answer with `MiddlewareDecision`:
 * anything but a valid decision is an `ExecutorError` naming the component, never a pass.
 */
import { Clock, Effect, Inspectable, Option, ParseResult, Predicate, Schema } from "effect"
import type { ComponentRoute, Phase } from "../../services/host/Component.js"
import { isRoutable } from "../../services/host/Component.js"
import { ExecutorError, type Executor, type InProcessFunction } from "../../services/host/Executor.js"
import { type ComponentConfig, ConfigError, defaultHttpConfig } from "../../services/host/HostConfig.js"
import { MiddlewareDecision, type WorkflowEnvelope } from "../../services/host/MiddlewareContract.js"
import {
  bearerHeaders,
  type CallHeaders,
  type CallLimits,
  deadlineHeader,
  type ModuleCallError,
  type ModuleClientShape
} from "../../services/host/ModuleClient.js"
import { defaultModuleUser, describeExit, type LaunchError, ProcessLauncher } from "../../services/host/ProcessLauncher.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"

/** A component as the executors see it: its config with its id filled in. */
export type ExecutorComponent = ComponentConfig & { readonly id: string }



/**
 * Extra time an outer deadline leaves the client or launcher to report its own timeout (and clean up
 * its socket or process group) before the executor interrupts it.
 */
const backstopMs = 1_000

/** Characters of a parse error or an output quoted in an error message. */
const summaryLength = 400

const truncate = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > summaryLength ? `${flat.slice(0, summaryLength)}…` : flat
}

const describe = (value: unknown): string =>
  Predicate.hasProperty(value, "message") && typeof value.message === "string"
    ? value.message
    : Inspectable.toStringUnknown(value)

const executorError = (
  component: string,
  reason: ExecutorError["reason"],
  message: string,
  phase?: Phase
): ExecutorError =>
  new ExecutorError({ component, reason, message: `component ${component}: ${message}`, ...(phase === undefined ? {} : { phase }) })

const limitsOf = (component: ExecutorComponent): CallLimits => {
  const http = component.http ?? defaultHttpConfig
  return { timeoutMs: http.request_timeout_ms, maxResponseBytes: http.max_response_bytes }
}

const kindOf = (value: unknown): string =>
  Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`

/** The parse error in a line: one issue per JSON path (`payload: is missing`). */
const summarizeInvalid = (answer: unknown, error: ParseResult.ParseError): string => {
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    return `expected a JSON object like {"decision":"allow"}, got ${kindOf(answer)}`
  }
  return truncate(parseIssueLines(error).join("; "))
}

/** Decodes an answer as a `MiddlewareDecision`; an invalid one fails with `InvalidDecision` and what is wrong. */
const decodeDecision = (component: string, answer: unknown): Effect.Effect<MiddlewareDecision, ExecutorError> =>
  Effect.mapError(
    Schema.decodeUnknown(MiddlewareDecision)(answer),
    (error) => executorError(component, "InvalidDecision", `invalid decision: ${summarizeInvalid(answer, error)}`)
  )

/**
 * Wraps an invocation in a non-waiting permit (`Busy` when all are held) and a deadline of
 * `deadlineMs` that interrupts it (`Timeout`, reported as `timeoutMs`, the configured limit).
 */
const bounded = (
  component: string,
  maxConcurrency: number,
  timeoutMs: number,
  deadlineMs: number,
  attempt: (envelope: WorkflowEnvelope) => Effect.Effect<MiddlewareDecision, ExecutorError>
): Effect.Effect<Executor> =>
  Effect.map(Effect.makeSemaphore(maxConcurrency), (permits): Executor => ({
    component,
    invoke: (envelope) =>
      attempt(envelope).pipe(
        Effect.timeoutFail({
          duration: deadlineMs,
          onTimeout: () => executorError(component, "Timeout", `no decision within ${timeoutMs} ms`)
        }),
        permits.withPermitsIfAvailable(1),
        Effect.flatMap(Option.match({
          onNone: () =>
            Effect.fail(executorError(component, "Busy", `all ${maxConcurrency} concurrency permits are held; try again later`)),
          onSome: Effect.succeed
        }))
      )
  }))

const fromCallError = (component: string, error: ModuleCallError): ExecutorError => {
  switch (error.reason) {
    case "BadJson":
      return executorError(component, "InvalidDecision", error.message)
    case "Status":
    case "Timeout":
    case "TooLarge":
    case "Unreachable":
      return executorError(component, error.reason, error.message)
  }
}

const fromLaunchError = (component: string, error: LaunchError): ExecutorError => {
  switch (error.reason) {
    case "Spawn":
      return executorError(component, "Crashed", `could not start: ${error.message}`)
    case "Timeout":
      return executorError(component, "Timeout", error.message)
    case "OutputTooLarge":
      return executorError(component, "TooLarge", error.message)
  }
}

/** Options of an `in_process` executor. */
export interface InProcessOptions {
  readonly timeoutMs: number
  readonly maxConcurrency: number
}

/** An `in_process` executor: runs `fn`; its failure or defect is `Failed`, past `timeoutMs` it is interrupted (`Timeout`). */
export const makeInProcessExecutor = (
  componentId: string,
  fn: InProcessFunction,
  options: InProcessOptions
): Effect.Effect<Executor> =>
  bounded(componentId, options.maxConcurrency, options.timeoutMs, options.timeoutMs, (envelope) =>
    Effect.suspend(() => fn(envelope)).pipe(
      Effect.catchAll((error) => Effect.fail(executorError(componentId, "Failed", `the function failed: ${describe(error)}`))),
      Effect.catchAllDefect((defect) => Effect.fail(executorError(componentId, "Failed", `the function died: ${describe(defect)}`))),
      Effect.flatMap((answer) => decodeDecision(componentId, answer))
    ))

/** Options of a `command_stdio` executor. */
export interface CommandStdioOptions {
  /** The clean environment the host built (`CORRAL_MODULE_ID`, …); wins over `launch.env`. */
  readonly env: Record<string, string>
  /** Where the process's stderr (and stdout) is appended; omitted: kept in memory only. */
  readonly logFile?: string
}

/**
 * A `command_stdio` executor: one process per invocation, the envelope JSON on stdin, the decision
 * JSON on stdout, limits from `http.request_timeout_ms` / `max_response_bytes` (5000 / 65536 without `http`).
 */
export const makeCommandStdioExecutor = (
  component: ExecutorComponent,
  options: CommandStdioOptions
): Effect.Effect<Executor, ConfigError, ProcessLauncher> =>
  Effect.gen(function*() {
    const id = component.id
    const launch = component.launch
    if (launch === undefined) {
      return yield* new ConfigError({
        file: "effective config",
        path: `components.${id}.launch`,
        reason: "a command_stdio component needs launch.executable"
      })
    }
    const launcher = yield* ProcessLauncher
    const limits = limitsOf(component)
    const spec = {
      name: id,
      executable: launch.executable,
      args: launch.args,
      env: { ...launch.env, ...options.env },
      sandbox: component.sandbox_profile,
      // module-restricted on a root host: each run as the component's unprivileged user.
      runAs: component.run_as ?? defaultModuleUser,
      ...(launch.cwd === undefined ? {} : { cwd: launch.cwd }),
      ...(options.logFile === undefined ? {} : { logFile: options.logFile })
    }
    const encoder = new TextEncoder()
    const decoder = new TextDecoder()
    return yield* bounded(id, component.max_concurrency, limits.timeoutMs, limits.timeoutMs + backstopMs, (envelope) =>
      launcher.run(spec, encoder.encode(JSON.stringify(envelope)), {
        timeoutMs: limits.timeoutMs,
        maxStdoutBytes: limits.maxResponseBytes
      }).pipe(
        Effect.mapError((error) => fromLaunchError(id, error)),
        Effect.flatMap((result) => {
          if (result.exit.code !== 0 || result.exit.signal !== null) {
            const tail = result.stderrTail.trim()
            return Effect.fail(
              executorError(id, "Crashed", `the process ${describeExit(result.exit)}${tail.length > 0 ? `; stderr: ${truncate(tail.slice(-summaryLength))}` : ""}`)
            )
          }
          const text = decoder.decode(result.stdout)
          try {
            return decodeDecision(id, JSON.parse(text) as unknown)
          } catch {
            return Effect.fail(
              executorError(id, "InvalidDecision", `stdout is not JSON: ${text.trim().length === 0 ? "(empty)" : truncate(text)}`)
            )
          }
        })
      ))
  })

/**
 * The headers of one invocation: its absolute deadline (now plus the sooner of the call's timeout and
 * the envelope's `deadline_ms`, in epoch ms), so the module drops work the host no longer waits for;
 * and, for a module the host launched, its run's token.
 */
const invocationHeaders = (timeoutMs: number, envelope: WorkflowEnvelope, token: string | null): Effect.Effect<CallHeaders> =>
  Effect.map(Clock.currentTimeMillis, (now) => ({
    ...(token === null ? {} : bearerHeaders(token)),
    [deadlineHeader]: String(now + Math.min(timeoutMs, envelope.deadline_ms ?? timeoutMs))
  }))

const invokeOverHttp = (
  component: ExecutorComponent,
  client: ModuleClientShape,
  endpoint: string,
  token: string | null,
  envelope: WorkflowEnvelope
): Effect.Effect<MiddlewareDecision, ExecutorError> => {
  const http = component.http ?? defaultHttpConfig
  const limits = limitsOf(component)
  return invocationHeaders(limits.timeoutMs, envelope, token).pipe(
    Effect.flatMap((headers) => client.postJson(endpoint, http.invoke_path, envelope, limits, headers)),
    Effect.mapError((error) => fromCallError(component.id, error)),
    Effect.flatMap((reply) => decodeDecision(component.id, reply.body))
  )
}

/** A `local_http_json` executor: POSTs the envelope to `http.invoke_path` at `http.endpoint`, a service the host does not run. */
export const makeLocalHttpExecutor = (
  component: ExecutorComponent,
  client: ModuleClientShape
): Effect.Effect<Executor, ConfigError> =>
  Effect.gen(function*() {
    const endpoint = component.http?.endpoint
    if (endpoint === undefined) {
      return yield* new ConfigError({
        file: "effective config",
        path: `components.${component.id}.http.endpoint`,
        reason: "a local_http_json component needs http.endpoint (e.g. http://127.0.0.1:47951)"
      })
    }
    const { timeoutMs } = limitsOf(component)
    return yield* bounded(component.id, component.max_concurrency, timeoutMs, timeoutMs + backstopMs, (envelope) =>
      invokeOverHttp(component, client, endpoint, null, envelope))
  })

/**
 * An `http_local_json` executor: reads the component's route on every invocation; outside
 * `ready`/`degraded` (or without an endpoint) fails `NotReady` with the phase and makes no call.
 * Each call carries the token of the module's current run.
 * `onTimeout` runs after each invocation that timed out (the supervisor's streak toward `degraded`).
 */
export const makeSupervisedHttpExecutor = (
  component: ExecutorComponent,
  client: ModuleClientShape,
  route: Effect.Effect<ComponentRoute>,
  onTimeout?: Effect.Effect<void>
): Effect.Effect<Executor> => {
  const { timeoutMs } = limitsOf(component)
  const attempt = (envelope: WorkflowEnvelope): Effect.Effect<MiddlewareDecision, ExecutorError> =>
    Effect.flatMap(route, ({ endpoint, phase, token }) =>
      !isRoutable(phase) || endpoint === null
        ? Effect.fail(executorError(component.id, "NotReady", `not routable in phase ${phase}${endpoint === null ? " (no endpoint)" : ""}`, phase))
        : invokeOverHttp(component, client, endpoint, token, envelope))
  return Effect.map(
    bounded(component.id, component.max_concurrency, timeoutMs, timeoutMs + backstopMs, attempt),
    (executor): Executor =>
      onTimeout === undefined ? executor : {
        component: executor.component,
        invoke: (envelope) =>
          Effect.tapError(executor.invoke(envelope), (error) => error.reason === "Timeout" ? onTimeout : Effect.void)
      }
  )
}

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
