/**
 * Runs the built host (`node dist/bin/corral.js up`) as a real child process on a temporary
 * data directory; the scope's end kills it by pid if the test did not stop it.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { Effect } from "effect"
import type { Scope } from "effect"

const corralScript = Path.resolve(import.meta.dirname, "../../dist/bin/corral.js")
/** Absolute path of the test fixtures. */
export const fixturesDir = Path.resolve(import.meta.dirname, "../fixtures")

/** A running host process. */
export interface HostProcess {
  readonly child: ChildProcess
  readonly dataDir: string
  readonly url: string
  readonly token: string
  readonly up: { readonly components: ReadonlyArray<{ readonly id: string; readonly phase: string; readonly pid: number | null }> }
  readonly stderr: () => string
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

const createdDataDirs: Array<string> = []

/** Removes every data directory `makeDataDir` made (call from `afterAll`). */
export const removeDataDirs = (): void => {
  for (const dir of createdDataDirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
}

/** A fresh data directory with operator fragments `fragments` (file name → JSON). */
export const makeDataDir = (fragments: Readonly<Record<string, unknown>> = {}): string => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-host-"))
  createdDataDirs.push(dataDir)
  Fs.mkdirSync(Path.join(dataDir, "config"), { recursive: true })
  for (const [name, content] of Object.entries(fragments)) {
    Fs.writeFileSync(Path.join(dataDir, "config", name), JSON.stringify(content, null, 2))
  }
  return dataDir
}

/** Runs `corral up` and waits (≤ 30 s) for its `up` line; fails with its stderr if it exits first. */
export const startHost = (
  dataDir: string,
  env: Readonly<Record<string, string>> = {}
): Effect.Effect<HostProcess, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<HostProcess, Error>((resume) => {
      const child = spawn(process.execPath, [corralScript, "up", "--data-dir", dataDir], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...env }
      })
      let stderr = ""
      child.stderr.setEncoding("utf8")
      child.stderr.on("data", (chunk: string) => {
        stderr += chunk
      })
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      const timer = setTimeout(() => resume(Effect.fail(new Error(`host did not come up within 30 s:\n${stderr}`))), 30_000)
      child.once("exit", (code) => {
        clearTimeout(timer)
        resume(Effect.fail(new Error(`host exited with ${code} before it was up:\n${stderr}`)))
      })
      Readline.createInterface({ input: child.stdout }).on("line", (line) => {
        const event = JSON.parse(line) as { event: string; url: string; components: HostProcess["up"]["components"] }
        if (event.event !== "up") return
        clearTimeout(timer)
        resume(Effect.succeed({
          child,
          dataDir,
          url: event.url,
          token: Fs.readFileSync(Path.join(dataDir, "run", "control.token"), "utf8").trim(),
          up: { components: event.components },
          stderr: () => stderr,
          stop: (signal = "SIGTERM") => {
            child.kill(signal)
            return exited
          }
        }))
      })
    }),
    (host) => Effect.sync(() => {
      if (host.child.exitCode === null && host.child.signalCode === null) host.child.kill("SIGKILL")
    })
  )

/** Calls the control API with the token. */
export const control = async (
  host: HostProcess,
  method: string,
  path: string,
  body?: unknown
): Promise<{ status: number; body: unknown }> => {
  const response = await fetch(`${host.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${host.token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: text.length > 0 ? JSON.parse(text) as unknown : null }
}

/**
 * SIGKILLs exactly `pid`. A missing pid is a test failure, never `kill(0)`: that would kill the test
 * runner's own process group (and with it the whole suite).
 */
export const killPid = (pid: number | null | undefined): void => {
  if (pid === null || pid === undefined || !Number.isInteger(pid) || pid <= 1) throw new Error(`refusing to kill pid ${String(pid)}`)
  process.kill(pid, "SIGKILL")
}
