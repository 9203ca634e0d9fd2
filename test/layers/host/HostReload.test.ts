/**
 * HostReload on the whole host graph with simulated processes and scripted modules: a reload that adds
 * one component, removes one and leaves the rest alone (same pid); a config with problems in two files
 * changes nothing and names both; a `host.*` change is refused; hook lists and executors swap at once.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect, Layer, Logger, Ref } from "effect"
import type { Scope } from "effect"
import { HostServicesLive } from "../../../src/layers/host/HostLive.js"
import { makeSimulatedLauncher } from "../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { CurrentConfig } from "../../../src/services/host/EffectiveConfig.js"
import { Executors, type InProcessFunction } from "../../../src/services/host/Executor.js"
import { HookRunner } from "../../../src/services/host/HookRunner.js"
import { HostEvents } from "../../../src/services/host/HostEvents.js"
import { HostReload, ReloadRefused } from "../../../src/services/host/HostReload.js"
import { Supervisor } from "../../../src/services/host/Supervisor.js"
import { scriptedModuleClient } from "../../support/scriptedModules.js"
import { awaitPhases } from "../../support/simulatedSupervisor.js"

const bundledModules = Path.resolve(import.meta.dirname, "../../../modules")

/** A supervised component the simulated launcher runs (its script is never read). */
const simulatedModule = (moduleId: string) => ({
  kind: "http_local_json",
  module_id: moduleId,
  launch: { executable: "python3", args: ["/nonexistent/corral-test-module.py"] },
  http: { port: "auto" }
})

/** A data dir whose `config/` holds `fragments`; `write`/`remove` edit them between reloads. */
const tempDataDir = (fragments: Readonly<Record<string, unknown>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-reload-"))
      const write = (name: string, content: unknown) =>
        Fs.writeFileSync(Path.join(dataDir, "config", name), typeof content === "string" ? content : JSON.stringify(content))
      Fs.mkdirSync(Path.join(dataDir, "config"))
      for (const [name, content] of Object.entries(fragments)) write(name, content)
      return { dataDir, write, remove: (name: string) => Fs.rmSync(Path.join(dataDir, "config", name)), file: (name: string) => Path.join(dataDir, "config", name) }
    }),
    ({ dataDir }) => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true }))
  )

/** The host on simulated processes, built in the test's scope, with its services at hand. */
const simulatedHost = (dataDir: string, inProcess?: ReadonlyMap<string, InProcessFunction>) =>
  Effect.gen(function*() {
    const { layer: launcher, control } = yield* makeSimulatedLauncher
    const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
    const context = yield* Layer.build(
      HostServicesLive({ dataDir, modulesDir: bundledModules, ...(inProcess === undefined ? {} : { inProcess }) }).pipe(
        Layer.provide(Layer.mergeAll(launcher, scriptedModuleClient(behaviour), LoopbackPortsLive))
      )
    )
    const get = <I, S>(tag: Context.Tag<I, S>) => Effect.provide(tag, context)
    return {
      processes: control,
      supervisor: yield* get(Supervisor),
      hooks: yield* get(HookRunner),
      reload: (yield* get(HostReload)).reload,
      events: yield* get(HostEvents),
      current: yield* get(CurrentConfig),
      executors: yield* get(Executors)
    }
  })

const quiet = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {}))))

const envelope = { id: "e1", hook: "extra", subject: "user:1", payload: {} }

describe("HostReload (simulated processes)", () => {
  it.scopedLive("adds a new component, removes a dropped one, leaves the others running with the same pid, and swaps the hook", () =>
    quiet(Effect.gen(function*() {
      const files = yield* tempDataDir({ "50-one.json": { components: { "extra.one": simulatedModule("one") }, hooks: { extra: ["extra.one"] } } })
      const host = yield* simulatedHost(files.dataDir)
      yield* host.supervisor.startAll
      const before = yield* awaitPhases(host.supervisor, { "middleware.dator": "ready", "middleware.arca": "ready", "extra.one": "ready" })
      const pidOf = (views: typeof before, id: string) => views.find((view) => view.id === id)?.pid
      const onePid = pidOf(before, "extra.one")
      expect((yield* host.hooks.invoke("extra", envelope)).steps.map((step) => step.component)).toEqual(["extra.one"])

      files.remove("50-one.json")
      files.write("60-two.json", { components: { "extra.two": simulatedModule("two") }, hooks: { extra: ["extra.two"] } })
      const outcome = yield* host.reload

      expect(outcome).toEqual({
        added: ["extra.two"],
        removed: ["extra.one"],
        restarted: [],
        unchanged: ["middleware.arca", "middleware.dator"],
        hooks: ["ingress", "extra"]
      })
      const after = yield* awaitPhases(host.supervisor, { "middleware.dator": "ready", "middleware.arca": "ready", "extra.two": "ready" })
      expect(after.map((view) => view.id).sort()).toEqual(["extra.two", "middleware.arca", "middleware.dator"])
      expect(pidOf(after, "middleware.dator")).toBe(pidOf(before, "middleware.dator"))
      expect(pidOf(after, "middleware.arca")).toBe(pidOf(before, "middleware.arca"))
      const running = yield* host.processes.running
      expect(running).not.toContain(onePid)
      expect(running).toContain(pidOf(after, "extra.two"))
      // The hook now runs the new chain, through the new component's executor.
      const invoked = yield* host.hooks.invoke("extra", envelope)
      expect(invoked.steps.map((step) => [step.component, step.outcome])).toEqual([["extra.two", "allow"]])
      expect(host.executors.get("extra.one")).toBeUndefined()
      expect(Object.keys((yield* host.current.get).config.components)).not.toContain("extra.one")
      const [reloaded] = (yield* host.events.recent(1000)).map((numbered) => numbered.event).filter((event) => event._tag === "reload")
      expect(reloaded).toMatchObject({ applied: true, added: ["extra.two"], removed: ["extra.one"], problems: [] })
    })))

  it.scopedLive("a config with a problem in each of two files changes nothing and reports both, each naming its file", () =>
    quiet(Effect.gen(function*() {
      const files = yield* tempDataDir({})
      const host = yield* simulatedHost(files.dataDir)
      yield* host.supervisor.startAll
      const before = yield* awaitPhases(host.supervisor, { "middleware.dator": "ready", "middleware.arca": "ready" })
      const launches = (yield* host.processes.launches).length
      const config = yield* host.current.get

      files.write("10-new.json", { components: { "extra.new": simulatedModule("new") } })
      files.write("20-timeout.json", { components: { "middleware.dator": { http: { request_timeout_ms: "5s" } } } })
      files.write("30-hooks.json", { hooks: { ingress: "middleware.dator" } })
      const refused = yield* Effect.flip(host.reload)

      expect(refused).toBeInstanceOf(ReloadRefused)
      expect(refused.problems).toEqual([
        `${files.file("20-timeout.json")}: components["middleware.dator"].http.request_timeout_ms: expected an integer between 1 and 86400000, got "5s"`,
        `${files.file("30-hooks.json")}: hooks.ingress: expected an array (each item a non-empty string) or an object, got "middleware.dator"`
      ])
      expect(yield* host.supervisor.list).toEqual(before)
      expect(yield* host.processes.launches).toHaveLength(launches)
      expect(yield* host.current.get).toBe(config)
      const [event] = (yield* host.events.recent(1000)).map((numbered) => numbered.event).filter((e) => e._tag === "reload")
      expect(event).toMatchObject({ applied: false, added: [], removed: [], problems: refused.problems })
    })))

  it.scopedLive("a change under host.* is refused by name and file, since those settings apply only at start", () =>
    quiet(Effect.gen(function*() {
      const files = yield* tempDataDir({})
      const host = yield* simulatedHost(files.dataDir)
      files.write("10-port.json", { host: { control: { port: 4100 } }, components: { "extra.new": simulatedModule("new") } })
      const refused = yield* Effect.flip(host.reload)
      expect(refused.problems).toEqual([
        `${files.file("10-port.json")}: host.control.port: changed from 0 to 4100, but host settings apply only when the host starts; ` +
        "restart the host to apply it, or put the old value back to reload the rest"
      ])
      expect((yield* host.supervisor.list).map((view) => view.id)).not.toContain("extra.new")
    })))

  it.scopedLive("swaps hook lists at once and rebuilds only the executors whose component changed", () =>
    quiet(Effect.gen(function*() {
      const answer = (by: string): InProcessFunction => () => Effect.succeed({ decision: "allow", annotations: { [by]: true } })
      const inProcess = new Map([["a", answer("a")], ["b", answer("b")]])
      const files = yield* tempDataDir({
        "50-steps.json": {
          components: { "step.a": { kind: "in_process", function: "a" }, "step.b": { kind: "in_process", function: "b" } },
          hooks: { extra: ["step.a"] }
        }
      })
      const host = yield* simulatedHost(files.dataDir, inProcess)
      const unchanged = host.executors.get("step.a")
      const changed = host.executors.get("step.b")
      expect((yield* host.hooks.invoke("extra", envelope)).steps.map((step) => step.component)).toEqual(["step.a"])
      expect(yield* host.hooks.names).toEqual(["ingress", "extra"])

      files.write("50-steps.json", {
        components: { "step.a": { kind: "in_process", function: "a" }, "step.b": { kind: "in_process", function: "b", max_concurrency: 2 } },
        hooks: { extra: ["step.b", "step.a"], audit: ["step.a"] }
      })
      yield* host.reload

      const invoked = yield* host.hooks.invoke("extra", envelope)
      expect(invoked.steps.map((step) => step.component)).toEqual(["step.b", "step.a"])
      expect(invoked.decision).toEqual({ decision: "allow", annotations: { a: true, b: true } })
      expect(yield* host.hooks.names).toEqual(["ingress", "extra", "audit"])
      expect(host.executors.get("step.a")).toBe(unchanged)
      expect(host.executors.get("step.b")).not.toBe(changed)
      expect(host.executors.get("step.b")).toBeDefined()
    })))
})
