/**
 * The CLI's client commands at their edges, as a user of systemctl or PM2 would meet them: Ctrl-C and
 * a closed pipe end them quietly with the shell's exit code; follows survive a restart of the host;
 * run files left by a dead host never send the token anywhere; every usage mistake is one line, exit 2.
 * Real host processes (Arca disabled so each starts fast) and the built CLI.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import { makeDataDir, removeDataDirs, startHost } from "../support/hostProcess.js"
import { waitUntil } from "../support/rawHttp.js"

const corralScript = Path.resolve(import.meta.dirname, "../../dist/bin/corral.js")

afterAll(removeDataDirs)

const datorOnly = () => makeDataDir({ "50-test.json": { components: { "middleware.arca": { enabled: false } } } })

/** Runs the built CLI to its end (≤ 40 s), piped. */
const corral = (args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, [corralScript, ...args], { encoding: "utf8", timeout: 40_000, env: { ...process.env, NO_COLOR: "" } })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** A CLI process left running (a follow), with its output collected; killed by pid at the scope's end. */
interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

const spawnCorral = (args: ReadonlyArray<string>): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [corralScript, ...args], { stdio: ["pipe", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk
      })
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk
      })
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
      return { child, stdout: () => stdout, stderr: () => stderr, exit }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** The process's exit, or a test failure after 5 s. */
const exited = (running: Running) =>
  Effect.promise(() => running.exit).pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`still running 5 s later; stderr:\n${running.stderr()}`) }),
    Effect.orDie
  )

const waitFor = (what: string, condition: () => boolean, running: Running, timeoutMs = 15_000) =>
  Effect.tryPromise(() => waitUntil(condition, timeoutMs)).pipe(
    Effect.mapError(() => new Error(`no ${what} within ${timeoutMs} ms; stdout:\n${running.stdout()}\nstderr:\n${running.stderr()}`)),
    Effect.orDie
  )

describe("client commands end quietly", () => {
  it.scopedLive("Ctrl-C ends events and logs -f at once with exit 130 (SIGTERM 143), without the host's stop line; a closed pipe ends events with 141", () =>
    Effect.gen(function*() {
      const dataDir = datorOnly()
      yield* startHost(dataDir)
      const at = ["--data-dir", dataDir]
      for (const [args, signal, code] of [[["events"], "SIGINT", 130], [["logs", "-f", "middleware.dator"], "SIGINT", 130], [["events", "--json"], "SIGTERM", 143]] as const) {
        const follow = yield* spawnCorral([...args, ...at])
        // The follow is connected once it printed (logs: the tail; events: its first line on stderr).
        yield* waitFor(`${args.join(" ")} connected`, () => follow.stderr().includes("following") || follow.stdout().length > 0, follow)
        follow.child.kill(signal)
        const end = yield* exited(follow)
        expect(end, `${args.join(" ")} after ${signal}`).toEqual({ code, signal: null })
        expect(follow.stderr()).not.toMatch(/stopping|a second signal|fiber=|cause=/)
      }
      // `corral events | head -1`: the reader goes away; the next write ends it, not a stack dump.
      const piped = yield* spawnCorral(["events", ...at])
      yield* waitFor("events connected", () => piped.stderr().includes("following"), piped)
      piped.child.stdout.destroy()
      expect(corral(["restart", "middleware.dator", "--wait", ...at]).status).toBe(0)
      const end = yield* exited(piped)
      expect(end).toEqual({ code: 141, signal: null })
      expect(piped.stderr()).not.toMatch(/EPIPE|at |node:/)
    }))
})

describe("follows across a restart of the host", () => {
  it.scopedLive("events and logs -f reconnect to the data dir's new host and go on; the new host's events start from its first", () =>
    Effect.gen(function*() {
      const dataDir = datorOnly()
      const first = yield* startHost(dataDir)
      const at = ["--data-dir", dataDir]
      const events = yield* spawnCorral(["events", "--json", ...at])
      const logs = yield* spawnCorral(["logs", "-f", "-n", "0", "middleware.dator", ...at])
      yield* waitFor("events connected", () => events.stderr().includes("following"), events)
      yield* Effect.sleep("300 millis")
      expect(yield* Effect.promise(() => first.stop("SIGTERM"))).toBe(0)
      const second = yield* startHost(dataDir)
      const dator = second.up.components.find((c) => c.id === "middleware.dator")
      yield* waitFor("events followed the new host", () => events.stderr().includes("the host restarted"), events)
      type Numbered = { readonly id: number; readonly event: { readonly _tag: string; readonly component?: string; readonly to?: string; readonly pid?: number | null } }
      const newReady = () =>
        events.stdout().trim().split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line) as Numbered)
          .find((n) => n.event._tag === "lifecycle" && n.event.to === "ready" && n.event.pid === dator?.pid)
      yield* waitFor("the new host's dator ready event", () => newReady() !== undefined, events)
      // The new run's ring from its start: its first event (id 1) was not skipped for the old run's last id.
      expect(events.stdout()).toContain('{"id":1,')
      yield* waitFor("logs -f followed the new host", () => logs.stderr().includes("the host restarted"), logs)
      expect(events.child.exitCode).toBeNull()
      expect(logs.child.exitCode).toBeNull()
      // A second `corral up` is refused without claiming it stopped something.
      const refused = corral(["up", ...at])
      expect(refused.status).toBe(1)
      expect(refused.stderr).toMatch(/^corral: another host \(pid \d+\) is running on .*; nothing was started\n$/)
    }))
})

describe("run files a dead host left", () => {
  it("a pid now used by another process is no host: the token is never sent to whatever listens on the old port", () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const requests: Array<string> = []
      const impostor = Http.createServer((request, response) => {
        requests.push(`${request.method} ${request.url} ${request.headers.authorization ?? ""}`)
        response.writeHead(200, { "content-type": "application/json" }).end('{"components":[]}')
      })
      const port = yield* Effect.acquireRelease(
        Effect.async<number>((resume) => {
          impostor.listen(0, "127.0.0.1", () => {
            const address = impostor.address()
            resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
          })
        }),
        () => Effect.sync(() => impostor.close())
      )
      const dataDir = makeDataDir()
      const run = Path.join(dataDir, "run")
      Fs.mkdirSync(run, { mode: 0o700 })
      // A host with this test's pid but another process start time: the pid was reused since.
      Fs.writeFileSync(Path.join(run, "host.lock"), JSON.stringify({ pid: process.pid, start_ticks: "1", started_at: "2020-01-01T00:00:00.000Z" }))
      Fs.writeFileSync(Path.join(run, "control.json"), JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid }))
      Fs.writeFileSync(Path.join(run, "control.token"), "secret-token\n", { mode: 0o600 })
      const stale = yield* Effect.promise(() => runCorralAsync(["status", "--data-dir", dataDir]))
      expect(stale.status).toBe(1)
      expect(stale.stderr).toBe(`corral: no host is running in ${dataDir} (run/control.json names pid ${process.pid}, which is another process now); start one with: corral up --data-dir ${dataDir}\n`)
      expect(requests).toEqual([])
      // Without the lock to compare, a missing token still says "no host", not "run corral as the host's user".
      Fs.rmSync(Path.join(run, "host.lock"))
      Fs.rmSync(Path.join(run, "control.token"))
      const noToken = yield* Effect.promise(() => runCorralAsync(["status", "--data-dir", dataDir]))
      expect(noToken.status).toBe(1)
      expect(noToken.stderr).toMatch(/^corral: no host is running in .* \(no run\/control\.token\); start one with: corral up --data-dir /)
      expect(requests).toEqual([])
    }))))
})

/** Runs the CLI without blocking this process's event loop (the impostor server must stay able to answer). */
const runCorralAsync = (args: ReadonlyArray<string>): Promise<{ status: number | null; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [corralScript, ...args], { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
    child.once("exit", (status) => {
      clearTimeout(timer)
      resolve({ status, stderr })
    })
  })

describe("usage mistakes", () => {
  it("each is one line naming the user's own words and the help to read, exit 2", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["stauts"], "corral: 'stauts' is not a command of corral; did you mean 'status'? (commands: broker, config, events, invoke, logs, metrics, open, reload, restart, start, status, stop, trace, up) (see 'corral --help')"],
      [["config", "shwo"], "corral: 'shwo' is not a command of corral config; did you mean 'show'? (commands: check, schema, show) (see 'corral config --help')"],
      [["config"], "corral: config needs a command: show, check, schema (see 'corral config --help')"],
      [["broker"], "corral: broker needs a command: hello, admin (see 'corral broker --help')"],
      [["status", "--data-dir"], "corral: --data-dir needs a value (see 'corral status --help')"],
      [["logs", "middleware.dator", "-n"], "corral: -n needs a value (see 'corral logs --help')"],
      [["trace", "lifecycle", "--since", "--json"], "corral: --since needs a value (see 'corral trace --help')"],
      [["logs", "middleware.dator", "-n", "abc"], "corral: -n takes an integer, got 'abc' (see 'corral logs --help')"],
      [["restart", "x", "--timeout=soon"], "corral: --timeout takes an integer, got 'soon' (see 'corral restart --help')"]
    ]
    for (const [args, expected] of cases) {
      const run = corral(args)
      expect({ args, status: run.status, stderr: run.stderr, stdout: run.stdout }).toEqual({ args, status: 2, stderr: `${expected}\n`, stdout: "" })
    }
  })

  it("help lists Corral's commands, not the CLI library's built-in options", () => {
    const help = corral(["--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("status [--data-dir text] [--json]")
    expect(help.stdout).toContain("config show")
    expect(help.stdout).not.toMatch(/--wizard|--completions|--log-level/)
  })
})
