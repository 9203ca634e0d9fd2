/** The `command_stdio` executor: one process per invocation, envelope JSON on stdin, decision JSON on stdout. */
import { substitutePlaceholders } from "../../../services/system/Placeholders.js"
import { Effect } from "effect"
import { type Executor } from "../../../services/host/Executor.js"
import { ConfigError } from "../../../services/host/HostConfig.js"
import { defaultModuleUser, describeExit, ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { type ExecutorComponent, backstopMs, bounded, decodeDecision, executorError, fromLaunchError, limitsOf, summaryLength, truncate } from "./ExecutorLimits.js"

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
    // The same placeholders a supervised launch gets (and the config's trust check resolved).
    const values = { component_id: id }
    const substitute = (text: string) => substitutePlaceholders(text, values)
    const spec = {
      name: id,
      executable: substitute(launch.executable),
      args: launch.args.map(substitute),
      env: { ...Object.fromEntries(Object.entries(launch.env).map(([name, value]) => [name, substitute(value)])), ...options.env },
      sandbox: component.sandbox_profile,
      // module-restricted on a root host: each run as the component's unprivileged user.
      runAs: component.run_as ?? defaultModuleUser,
      ...(launch.cwd === undefined ? {} : { cwd: substitute(launch.cwd) }),
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
