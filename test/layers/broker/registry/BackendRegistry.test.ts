import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import type { LoopbackPorts } from "../../../../src/services/system/LoopbackPorts.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import type { ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import { defaultBackendSlotPolicy } from "../../../../src/services/policies/BackendSlot.js"
import { echo, makeRegistryCase, registryFor } from "../../../support/brokerRegistry.js"
import { argvOf, waitFor } from "../../../support/procfs.js"

const { livenessCacheMs } = defaultBackendSlotPolicy

// Short base path: unix socket paths must stay under 108 bytes.
const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cbr-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const live = <A, E>(effect: Effect.Effect<A, E, ProcessLauncher | LoopbackPorts | Scope.Scope>) =>
  effect.pipe(Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive)))

describe("BackendRegistry with real processes", () => {
  it.scopedLive("starts exactly one backend for 200 concurrent acquires of a missing service", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo", { launch: { args: ["--delay-ready", "0.2"] } })
      const registry = yield* registryFor(c)
      const answers = yield* Effect.all(Array.from({ length: 200 }, () => registry.acquire("echo")), {
        concurrency: "unbounded"
      })
      expect(new Set(answers.map((answer) => JSON.stringify(answer.endpoint))).size).toBe(1)
      expect(new Set(answers.map((answer) => answer.pid)).size).toBe(1)
      expect(answers.filter((answer) => answer.launched)).toHaveLength(1)
      expect(c.backendPids()).toEqual([answers[0]?.pid])
      const counters = yield* registry.counters
      expect(counters.launches).toBe(1)
      expect(counters.coalescedWaits).toBeGreaterThan(100)
      const [first] = answers
      if (first === undefined) throw new Error("no answer")
      expect(first.endpoint.kind).toBe("unix")
      expect(first.endpoint.kind === "unix" && Path.dirname(first.endpoint.path)).toBe(Path.join(c.runDir, "backends"))
      expect(Fs.statSync(Path.join(c.runDir, "backends")).mode & 0o777).toBe(0o700)
      expect(yield* echo(first.endpoint, "hello backend")).toBe("hello backend")
      const again = yield* registry.acquire("echo")
      expect(again).toMatchObject({ pid: first.pid, instance: first.instance, launched: false })
      // The backend prints its own pid, which is its PID namespace's (not the launcher's `unshare` pid).
      expect(Fs.readFileSync(Path.join(c.logsDir, "backend-echo.log"), "utf8")).toMatch(/echo backend \d+ listening/)
    })))

  it.scopedLive("launches two services at the same time", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("slow-a", { launch: { args: ["--delay-ready", "0.8"] } })
      c.define("slow-b", { launch: { args: ["--delay-ready", "0.8"] } })
      const registry = yield* registryFor(c)
      const both = yield* Effect.fork(Effect.all([registry.acquire("slow-a"), registry.acquire("slow-b")], { concurrency: 2 }))
      // Both are spawned and waiting for readiness together: neither launch waits for the other.
      let starting = 0
      while (starting < 2) {
        starting = (yield* registry.snapshot).filter((entry) => entry.state === "starting" && entry.pid !== null).length
        yield* Effect.sleep("10 millis")
      }
      const [a, b] = yield* Fiber.join(both)
      expect(a.launched && b.launched).toBe(true)
      expect(a.pid).not.toBe(b.pid)
      expect((yield* registry.snapshot).map((entry) => entry.state)).toEqual(["live", "live"])
    })), 10_000)

  it.scopedLive("answers launch_failed for a backend that never becomes ready, and leaves no process", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("stuck", { ready_timeout_ms: 400, launch: { args: ["--delay-ready", "60"] } })
      const registry = yield* registryFor(c)
      const started = Date.now()
      const error = yield* Effect.flip(registry.acquire("stuck"))
      expect(Date.now() - started).toBeLessThan(3_000)
      expect(error.code).toBe("launch_failed")
      expect(error.message).toContain("did not accept a connection")
      expect(error.message).toContain("within ready_timeout_ms 400; it was stopped")
      expect(error.retryAfterMs).toBeUndefined()
      expect(c.backendPids()).toEqual([])
      expect(c.socketFiles()).toEqual([])
      expect(yield* registry.snapshot).toEqual([])
      // Not cached: the next acquire launches again.
      expect((yield* Effect.flip(registry.acquire("stuck"))).code).toBe("launch_failed")
      expect(yield* registry.counters).toMatchObject({ launches: 2, launchFailures: 2 })
      expect((yield* registry.spawnBudgets)[0]).toMatchObject({ used: 2, retry_after_ms: 0 })
    })))

  it.scopedLive("answers launch_failed with the backend's output when it exits before becoming ready", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("crashy", { launch: { args: ["--exit-code", "3"] } })
      const registry = yield* registryFor(c)
      const error = yield* Effect.flip(registry.acquire("crashy"))
      expect(error.code).toBe("launch_failed")
      expect(error.message).toContain("exited with code 3 before")
      expect(error.message).toContain("echo backend exiting with 3 as asked")
    })))

  it.scopedLive("replaces a killed backend on the next acquire", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo")
      const registry = yield* registryFor(c)
      const first = yield* registry.acquire("echo")
      process.kill(first.pid, "SIGKILL")
      yield* waitFor("the first backend to exit", () => !c.backendPids().includes(first.pid), 5_000)
      // The registry learns of the death when the process's exit (and its pipes' end) is seen.
      for (let i = 0; i < 200 && (yield* registry.counters).pruned === 0; i++) yield* Effect.sleep("10 millis")
      const second = yield* registry.acquire("echo")
      expect(second.launched).toBe(true)
      expect(second.pid).not.toBe(first.pid)
      expect(second.endpoint).not.toEqual(first.endpoint)
      expect(yield* echo(second.endpoint, "still here")).toBe("still here")
      expect(c.backendPids()).toEqual([second.pid])
      yield* waitFor("one backend socket file left", () => c.socketFiles().length === 1, 5_000)
      expect((yield* registry.counters).pruned).toBe(1)
    })))

  it.scopedLive("stops and replaces a backend whose process lives but whose endpoint no longer accepts", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo")
      const registry = yield* registryFor(c)
      const first = yield* registry.acquire("echo")
      if (first.endpoint.kind !== "unix") throw new Error("expected a unix endpoint")
      Fs.rmSync(first.endpoint.path)
      // Within livenessCacheMs of its last check the endpoint is trusted; past it, it is probed.
      const cached = yield* registry.acquire("echo")
      expect(cached).toMatchObject({ launched: false, pid: first.pid })
      yield* Effect.sleep(livenessCacheMs + 50)
      const second = yield* registry.acquire("echo")
      expect(second).toMatchObject({ launched: true })
      expect(second.pid).not.toBe(first.pid)
      yield* waitFor("the first backend to exit", () => !c.backendPids().includes(first.pid), 5_000)
      expect(c.backendPids()).toEqual([second.pid])
      const entry = (yield* registry.spawnBudgets)[0]
      expect(entry?.last_error).toContain(`endpoint ${first.endpoint.path} no longer accepts connections`)
    })))

  it.scopedLive("honours a definition edited between two acquires", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo", { launch: { args: ["--tag", "v{version}"] } })
      const registry = yield* registryFor(c)
      const first = yield* registry.acquire("echo")
      expect(first.version).toBe("1.0.0")
      expect(argvOf(first.pid)).toContain("v1.0.0")
      c.define("echo", { default_version: "2.0.0", launch: { args: ["--tag", "v{version}"] } })
      const second = yield* registry.acquire("echo")
      expect(second).toMatchObject({ version: "2.0.0", launched: true })
      expect(argvOf(second.pid)).toContain("v2.0.0")
      c.define("echo", { default_version: "2.0.0", launch: { args: ["--tag", "edited-{version}"] } })
      const third = yield* registry.acquire("echo")
      expect(third.launched).toBe(true)
      expect(argvOf(third.pid)).toContain("edited-2.0.0")
      // The first backend was launched from other args: an explicit 1.0.0 gets one from the edited ones.
      const fourth = yield* registry.acquire("echo", "1.0.0")
      expect(fourth.launched).toBe(true)
      expect(argvOf(fourth.pid)).toContain("edited-1.0.0")
      expect(c.backendPids()).toHaveLength(4)
    })))

  it.scopedLive("answers version_blocked below the floor or outside the allow-list, launching nothing", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("floored", { default_version: "2.1.0", min_version: "2.0.0" })
      c.define("listed", { default_version: "1.0.0", version_allow_list: ["1.0.0", "1.1.0"] })
      const registry = yield* registryFor(c)
      const below = yield* Effect.flip(registry.acquire("floored", "1.9.9"))
      expect(below).toMatchObject({ code: "version_blocked", service: "floored" })
      expect(below.message).toBe("floored version \"1.9.9\" is below min_version 2.0.0")
      const unlisted = yield* Effect.flip(registry.acquire("listed", "1.2.0"))
      expect(unlisted.code).toBe("version_blocked")
      expect(unlisted.message).toContain("[\"1.0.0\", \"1.1.0\"]")
      expect((yield* registry.counters).launches).toBe(0)
      expect(c.backendPids()).toEqual([])
    })))

  it.scopedLive("answers unknown_service for a service without a definition", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      const registry = yield* registryFor(c)
      const error = yield* Effect.flip(registry.acquire("ghost"))
      expect(error.code).toBe("unknown_service")
      expect(error.message).toContain(Path.join(c.servicesDir, "ghost.service.json"))
    })))

  it.scopedLive("refuses definitions from a group-writable services directory", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo")
      Fs.chmodSync(c.servicesDir, 0o770)
      const registry = yield* registryFor(c)
      const error = yield* Effect.flip(registry.acquire("echo"))
      expect(error.code).toBe("launch_failed")
      expect(error.message).toBe(`service definition refused: ${c.servicesDir}: writable by group (mode 0770); chmod go-w ${c.servicesDir}`)
      expect((yield* registry.counters).launches).toBe(0)
    })))

  it.scopedLive("gives a rebuilt executable a new backend, never the old resident one", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo")
      const registry = yield* registryFor(c)
      const old = yield* registry.acquire("echo")
      expect(yield* registry.acquire("echo")).toMatchObject({ pid: old.pid, launched: false })
      Fs.appendFileSync(c.backend, "\n# rebuilt\n")
      const rebuilt = yield* registry.acquire("echo")
      expect(rebuilt.launched).toBe(true)
      expect(rebuilt.pid).not.toBe(old.pid)
      expect(rebuilt.key).not.toBe(old.key)
      expect(rebuilt.key.split("/")[0]).toBe(old.key.split("/")[0])
      expect(yield* registry.acquire("echo")).toMatchObject({ pid: rebuilt.pid, launched: false })
    })))

  it.scopedLive("stops idle backends after idle_exit_sec", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("idle", { idle_exit_sec: 0.3 })
      const registry = yield* registryFor(c, { idleSweepIntervalMs: 50 })
      const backend = yield* registry.acquire("idle")
      yield* waitFor("no backend running", () => c.backendPids().length === 0, 3_000)
      yield* waitFor("no backend socket file left", () => c.socketFiles().length === 0, 1_000)
      expect((yield* registry.counters).idleExits).toBe(1)
      expect(yield* registry.snapshot).toEqual([])
      const next = yield* registry.acquire("idle")
      expect(next.launched).toBe(true)
      expect(next.pid).not.toBe(backend.pid)
    })))

  it.scopedLive("stopAll leaves no process and no socket file; tcp backends get a loopback port", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("on-unix")
      c.define("on-tcp", { endpoint: { kind: "tcp" }, launch: { args: ["--listen", "{endpoint}", "--port", "{port}"] } })
      const registry = yield* registryFor(c)
      const [unix, tcp] = yield* Effect.all([registry.acquire("on-unix"), registry.acquire("on-tcp")], { concurrency: 2 })
      expect(tcp.endpoint).toMatchObject({ kind: "tcp", host: "127.0.0.1" })
      if (tcp.endpoint.kind !== "tcp") throw new Error("expected a tcp endpoint")
      expect(argvOf(tcp.pid)).toEqual(expect.arrayContaining([`127.0.0.1:${tcp.endpoint.port}`, String(tcp.endpoint.port)]))
      expect(yield* echo(tcp.endpoint, "over tcp")).toBe("over tcp")
      expect([...c.backendPids()].sort()).toEqual([unix.pid, tcp.pid].sort())
      expect(c.socketFiles()).toHaveLength(1)
      yield* registry.stopAll
      expect(c.backendPids()).toEqual([])
      expect(c.socketFiles()).toEqual([])
      expect(yield* registry.snapshot).toEqual([])
    })))

  it.live("the scope's end stops every backend, including one still starting", () =>
    Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("ready")
      c.define("starting", { launch: { args: ["--delay-ready", "60"] } })
      const scope = yield* Scope.make()
      const registry = yield* live(registryFor(c)).pipe(Scope.extend(scope))
      yield* registry.acquire("ready")
      const pending = yield* Effect.fork(registry.acquire("starting"))
      yield* waitFor("two backends running", () => c.backendPids().length === 2, 5_000)
      yield* Scope.close(scope, Exit.void)
      expect(c.backendPids()).toEqual([])
      expect(c.socketFiles()).toEqual([])
      const outcome = yield* Fiber.join(pending).pipe(Effect.flip)
      expect(outcome.message).toContain("the broker is stopping")
      expect((yield* Effect.flip(registry.acquire("ready"))).message).toBe("the broker is stopping")
    }))
})
