/**
 * Runs `test/fixtures/broker-host.mjs` (the BUILT broker from `dist/`) as a child process on a data
 * dir, for tests that need the broker in a process of its own (an fd limit, say). The scope's end
 * SIGKILLs it by pid if the test did not stop it.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { Duration, Effect } from "effect"
import type { Scope } from "effect"

const hostScript = Path.resolve(import.meta.dirname, "../fixtures/broker-host.mjs")
const builtBroker = Path.resolve(import.meta.dirname, "../../dist/layers/broker/Broker.js")

/** A broker running in a child process. */
export interface BrokerHost {
  readonly pid: number
  readonly socketPath: string
  /** What it wrote to stderr so far (its log lines). */
  readonly stderr: () => string
  /** Sends SIGTERM to its pid and answers its exit code; dies if it has not exited within `timeoutMs`. */
  readonly terminate: (timeoutMs?: number) => Effect.Effect<number | null>
}

const exitOf = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once("exit", (code) => resolve(code)))

/** Starts the host on `dataDir` and waits (≤ 10 s) for its `listening` line; dies with its stderr if it fails. */
export const startBrokerHost = (dataDir: string): Effect.Effect<BrokerHost, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (!Fs.existsSync(builtBroker)) {
      return yield* Effect.dieMessage(`${builtBroker} is missing: run \`npm run build\` first (\`npm test\` builds before vitest)`)
    }
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [hostScript, dataDir], { stdio: ["ignore", "pipe", "pipe"] })),
      (child) =>
        Effect.sync(() => {
          if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL")
        })
    )
    let stderr = ""
    child.stderr?.setEncoding("utf8")
    child.stderr?.on("data", (chunk: string) => {
      stderr += chunk
    })
    const socketPath = yield* Effect.async<string, Error>((resume) => {
      const onExit = (code: number | null) => resume(Effect.fail(new Error(`broker host exited with ${code} before listening`)))
      child.once("exit", onExit)
      child.once("error", (error) => resume(Effect.fail(error)))
      if (child.stdout === null) return resume(Effect.fail(new Error("broker host has no stdout")))
      Readline.createInterface({ input: child.stdout }).on("line", (line) => {
        try {
          const event = JSON.parse(line) as { readonly event?: unknown; readonly socket?: unknown }
          if (event.event === "listening" && typeof event.socket === "string") {
            child.off("exit", onExit)
            resume(Effect.succeed(event.socket))
          }
        } catch {
          // Not an event line.
        }
      })
    }).pipe(
      Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error("broker host did not listen within 10 s") }),
      Effect.catchAll((error) => Effect.dieMessage(`${error.message}; its stderr:\n${stderr}`))
    )
    const pid = child.pid
    if (pid === undefined) return yield* Effect.dieMessage("broker host has no pid")
    return {
      pid,
      socketPath,
      stderr: () => stderr,
      terminate: (timeoutMs = 5_000) =>
        Effect.promise(() => {
          const exited = exitOf(child)
          process.kill(pid, "SIGTERM")
          return exited
        }).pipe(
          Effect.timeout(Duration.millis(timeoutMs)),
          Effect.catchTag("TimeoutException", () =>
            Effect.dieMessage(`broker host ${pid} did not exit within ${timeoutMs} ms of SIGTERM; its stderr:\n${stderr}`))
        )
    } satisfies BrokerHost
  })
