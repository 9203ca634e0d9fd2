/**
 * Runs the built demo server as a real child process: its first stdout line gives the URL; the
 * scope's end kills it by pid if a test did not stop it itself.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { Effect } from "effect"
import type { Scope } from "effect"

const demoScript = Path.resolve(import.meta.dirname, "../../dist/programs/demo-server.js")

/** A running demo server process. */
export interface DemoProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  /** Every stdout line so far (JSON events). */
  readonly lines: Array<string>
  /** Sends `signal` and resolves with the exit code once the process has exited. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts `node dist/programs/demo-server.js` with `args`; fails if it does not listen within 10 s. */
export const startDemo = (args: ReadonlyArray<string>): Effect.Effect<DemoProcess, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<DemoProcess, Error>((resume) => {
      const child = spawn(process.execPath, [demoScript, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] })
      const lines: Array<string> = []
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      child.stderr.resume()
      const timer = setTimeout(() => resume(Effect.fail(new Error("demo server did not print its listening line within 10 s"))), 10_000)
      Readline.createInterface({ input: child.stdout }).on("line", (line) => {
        lines.push(line)
        if (lines.length === 1) {
          clearTimeout(timer)
          const event = JSON.parse(line) as { event: string; url: string }
          resume(Effect.succeed({
            child,
            url: event.url,
            port: Number(new URL(event.url).port),
            lines,
            stop: (signal = "SIGTERM") => {
              child.kill(signal)
              return exited
            }
          }))
        }
      })
    }),
    (demo) => Effect.sync(() => {
      if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill("SIGKILL")
    })
  )
