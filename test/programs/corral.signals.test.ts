/**
 * The host as a process under signals and a second host: SIGTERM twice, SIGQUIT, SIGHUP, SIGUSR1,
 * and two `corral up` on one data directory. Real host processes; bundled modules disabled so each
 * test starts in well under a second.
 */
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, makeDataDir, removeDataDirs, startHost } from "../support/hostProcess.js"
import { processesWhoseArgv, somethingListensOn } from "../support/procfs.js"
import { waitUntil } from "../support/rawHttp.js"

const corralScript = Path.resolve(import.meta.dirname, "../../dist/bin/corral.js")

afterAll(removeDataDirs)

/** A data dir whose only component is a `command_stdio` step that sleeps, marked so its process can be found. */
const slowHostDataDir = (marker: string) =>
  makeDataDir({
    "50-test.json": {
      components: {
        "middleware.dator": { enabled: false },
        "middleware.arca": { enabled: false },
        "slow.step": {
          kind: "command_stdio",
          launch: { executable: "/bin/sh", args: ["-c", `sleep 30 # ${marker}`] },
          http: { request_timeout_ms: 60_000 }
        }
      },
      hooks: { ingress: ["slow.step"] }
    }
  })

/** Live processes with `marker` in any argument of their argv. */
const processesMentioning = (marker: string): ReadonlyArray<number> =>
  processesWhoseArgv((argv) => argv.some((argument) => argument.includes(marker)))

/** Resolves with the host's exit code; dies when it has not exited within 10 s. */
const exitOf = (host: { readonly child: { readonly exitCode: number | null; once: (event: "exit", listener: (code: number | null) => void) => unknown } }) =>
  Effect.promise(() => new Promise<number | null>((resolve) => host.child.exitCode !== null ? resolve(host.child.exitCode) : host.child.once("exit", resolve))).pipe(
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the host did not exit within 10 s") }),
    Effect.orDie
  )

describe("corral up under signals", () => {
  it.scopedLive("a second SIGTERM during the drain cuts the grace to zero: the call in flight gets 503, its child is gone, the run files are removed, exit 130", () =>
    Effect.gen(function*() {
      const marker = `corral-slow-${process.pid}-${Date.now()}`
      const dataDir = slowHostDataDir(marker)
      const host = yield* startHost(dataDir)
      const call = control(host, "POST", "/v1/hooks/ingress/invoke", { id: "e1", hook: "ingress", subject: "s", payload: {} })
        .then((reply) => reply.status, (error: unknown) => `failed: ${String(error)}`)
      yield* Effect.promise(() => waitUntil(() => processesMentioning(marker).length > 0, 5_000))
      const started = Date.now()
      host.child.kill("SIGTERM")
      yield* Effect.sleep("300 millis")
      host.child.kill("SIGTERM")
      const code = yield* exitOf(host)
      // The control server's grace is 5 s: only the second signal makes the stop this quick.
      expect(Date.now() - started).toBeLessThan(3_000)
      expect(code).toBe(130)
      expect(yield* Effect.promise(() => call)).toBe(503)
      expect(processesMentioning(marker)).toEqual([])
      for (const file of ["control.json", "control.token", "broker.sock", "host.lock"]) {
        expect(Fs.existsSync(Path.join(dataDir, "run", file))).toBe(false)
      }
      expect(host.stderr()).toContain("grace periods cut to zero")
    }))

  it.scopedLive("SIGQUIT drains like SIGTERM and exits 0; SIGHUP reloads the config and the host keeps serving", () =>
    Effect.gen(function*() {
      const dataDir = slowHostDataDir(`corral-quit-${process.pid}`)
      const host = yield* startHost(dataDir)
      host.child.kill("SIGHUP")
      yield* Effect.promise(() => waitUntil(() => host.stderr().includes("corral: reloaded"), 5_000))
      expect((yield* Effect.promise(() => control(host, "GET", "/v1/components"))).status).toBe(200)
      expect(Fs.existsSync(Path.join(dataDir, "run", "control.json"))).toBe(true)
      host.child.kill("SIGQUIT")
      expect(yield* exitOf(host)).toBe(0)
      expect(host.stderr()).toContain("corral: stopped")
      for (const file of ["control.json", "control.token", "broker.sock", "host.lock"]) {
        expect(Fs.existsSync(Path.join(dataDir, "run", file))).toBe(false)
      }
    }))

  it.scopedLive("SIGUSR1 opens no debugger: the host keeps serving and nothing listens on the inspector's port", () =>
    Effect.gen(function*() {
      const listenedBefore = somethingListensOn(9229)
      const host = yield* startHost(slowHostDataDir(`corral-usr1-${process.pid}`))
      host.child.kill("SIGUSR1")
      yield* Effect.promise(() => waitUntil(() => host.stderr().includes("SIGUSR1"), 5_000))
      yield* Effect.sleep("300 millis")
      if (!listenedBefore) expect(somethingListensOn(9229)).toBe(false)
      expect(host.stderr()).not.toContain("Debugger listening")
      expect((yield* Effect.promise(() => control(host, "GET", "/v1/components"))).status).toBe(200)
    }))
})

describe("one host per data directory", () => {
  it.scopedLive("a second corral up exits non-zero at once, naming the running host's pid, and changes nothing", () =>
    Effect.gen(function*() {
      const dataDir = slowHostDataDir(`corral-lock-${process.pid}`)
      const first = yield* startHost(dataDir)
      const run = Path.join(dataDir, "run")
      const before = {
        token: Fs.readFileSync(Path.join(run, "control.token"), "utf8"),
        control: Fs.readFileSync(Path.join(run, "control.json"), "utf8"),
        socket: Fs.statSync(Path.join(run, "broker.sock")).ino,
        lock: Fs.readFileSync(Path.join(run, "host.lock"), "utf8")
      }
      const started = Date.now()
      const second = spawnSync(process.execPath, [corralScript, "up", "--data-dir", dataDir], { encoding: "utf8", timeout: 20_000 })
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(second.status).not.toBe(0)
      expect(second.stderr).toContain(`another host (pid ${first.child.pid}) is running on ${dataDir}`)
      expect(Fs.readFileSync(Path.join(run, "control.token"), "utf8")).toBe(before.token)
      expect(Fs.readFileSync(Path.join(run, "control.json"), "utf8")).toBe(before.control)
      expect(Fs.statSync(Path.join(run, "broker.sock")).ino).toBe(before.socket)
      expect(Fs.readFileSync(Path.join(run, "host.lock"), "utf8")).toBe(before.lock)
      expect((yield* Effect.promise(() => control(first, "GET", "/v1/components"))).status).toBe(200)
    }))

  it.scopedLive("the stale lock of a host that died is taken over", () =>
    Effect.gen(function*() {
      const dataDir = slowHostDataDir(`corral-stale-${process.pid}`)
      const dead = spawn("true")
      const deadPid = yield* Effect.promise(() => new Promise<number>((resolve) => dead.once("exit", () => resolve(dead.pid ?? 0))))
      Fs.mkdirSync(Path.join(dataDir, "run"), { recursive: true, mode: 0o700 })
      Fs.writeFileSync(Path.join(dataDir, "run", "host.lock"), `${JSON.stringify({ pid: deadPid, start_ticks: "1", started_at: new Date(0).toISOString() })}\n`)
      const host = yield* startHost(dataDir)
      const lock = JSON.parse(Fs.readFileSync(Path.join(dataDir, "run", "host.lock"), "utf8")) as { pid: number }
      expect(lock.pid).toBe(host.child.pid)
    }))
})
