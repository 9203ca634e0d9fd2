import * as Fs from "node:fs"
import * as Path from "node:path"
import { spawnSync } from "node:child_process"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, fixturesDir, killPid, makeDataDir, removeDataDirs, startHost } from "../support/hostProcess.js"
import { cmdlineOf, descendantsOf, environOf, isAlive, processesWhoseArgv } from "../support/procfs.js"
import { waitUntil } from "../support/rawHttp.js"

const corralScript = Path.resolve(import.meta.dirname, "../../dist/bin/corral.js")

interface ComponentsBody {
  readonly components: ReadonlyArray<{ id: string; phase: string; pid: number | null; endpoint: string | null; last_error: string | null; report: { name: string } | null }>
}

afterAll(removeDataDirs)

describe("corral up (bundled Dator and Arca under supervision)", () => {
  it.scopedLive("starts both modules, serves the control API with its token, flows a hook through both, and drains on SIGTERM", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir()
      // As an operator's `mkdir` leaves it: the host closes it to others (config and traces are private).
      Fs.chmodSync(dataDir, 0o755)
      const host = yield* startHost(dataDir)
      expect(host.up.components.map((c) => [c.id, c.phase])).toEqual([["middleware.arca", "ready"], ["middleware.dator", "ready"]])
      expect(Fs.statSync(dataDir).mode & 0o777).toBe(0o700)
      expect(Fs.statSync(Path.join(dataDir, "run")).mode & 0o777).toBe(0o700)
      expect(Fs.statSync(Path.join(dataDir, "run", "control.token")).mode & 0o777).toBe(0o600)
      expect(JSON.parse(Fs.readFileSync(Path.join(dataDir, "run", "control.json"), "utf8"))).toMatchObject({ url: host.url, pid: host.child.pid })

      expect((yield* Effect.promise(() => fetch(`${host.url}/v1/components`))).status).toBe(401)
      expect((yield* Effect.promise(() => fetch(`${host.url}/healthz`))).status).toBe(200)
      const listed = (yield* Effect.promise(() => control(host, "GET", "/v1/components"))).body as ComponentsBody
      expect(listed.components.map((c) => c.report?.name)).toEqual(["arca", "dator"])
      expect((yield* Effect.promise(() => control(host, "GET", "/v1/components/nope"))).status).toBe(404)

      const invoked = yield* Effect.promise(() =>
        control(host, "POST", "/v1/hooks/ingress/invoke", { id: "env-1", hook: "ingress", subject: "alice", payload: { text: "hello" } })
      )
      expect(invoked.status).toBe(200)
      const result = invoked.body as { decision: { decision: string; annotations: Record<string, unknown> }; steps: ReadonlyArray<{ component: string; outcome: string; duration_ms: number }> }
      expect(result.decision.decision).toBe("allow")
      expect(result.steps.map((s) => [s.component, s.outcome])).toEqual([["middleware.dator", "allow"], ["middleware.arca", "allow"]])
      const recordId = result.decision.annotations["arca.record_id"]
      expect(typeof recordId).toBe("number")
      expect((yield* Effect.promise(() => control(host, "POST", "/v1/hooks/nope/invoke", {}))).status).toBe(404)
      expect((yield* Effect.promise(() => control(host, "POST", "/v1/hooks/ingress/invoke", { id: "x" }))).status).toBe(400)

      // Arca answers what it archived, through its own route, to the holder of its launch token.
      const arca = listed.components.find((c) => c.id === "middleware.arca")
      const arcaPid = descendantsOf(host.child.pid ?? 0).find((pid) => cmdlineOf(pid).includes("arca.py")) ?? 0
      const arcaToken = environOf(arcaPid)["CORRAL_MODULE_TOKEN"] ?? ""
      const archive = yield* Effect.promise(() =>
        fetch(`${arca?.endpoint}/v1/archive?subject=alice`, { headers: { authorization: `Bearer ${arcaToken}` } })
          .then((r) => r.json() as Promise<{ records: ReadonlyArray<{ record_id: number }> }>))
      expect(archive.records.map((r) => r.record_id)).toContain(recordId)

      const invocations = Fs.readFileSync(Path.join(dataDir, "trace", "invocation.jsonl"), "utf8").trim().split("\n")
      expect(invocations.map((line) => (JSON.parse(line) as { envelope_id: string }).envelope_id)).toContain("env-1")

      const pids = listed.components.map((c) => c.pid ?? 0)
      expect(pids.every(isAlive)).toBe(true)
      expect(yield* Effect.promise(() => host.stop("SIGTERM"))).toBe(0)
      expect(pids.filter(isAlive)).toEqual([])
      expect(Fs.existsSync(Path.join(dataDir, "run", "control.json"))).toBe(false)
      const lifecycle = Fs.readFileSync(Path.join(dataDir, "trace", "lifecycle.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { to: string })
      expect(lifecycle.filter((e) => e.to === "stopped")).toHaveLength(2)
    }))

  it.scopedLive("restarts a module killed behind its back, and its children die with a SIGKILLed host", () =>
    Effect.gen(function*() {
      const host = yield* startHost(makeDataDir())
      const dator = host.up.components.find((c) => c.id === "middleware.dator")
      const firstPid = dator?.pid ?? null
      killPid(firstPid)
      yield* Effect.promise(() =>
        waitUntil(async () => {
          const view = (await control(host, "GET", "/v1/components/middleware.dator")).body as { phase: string; pid: number | null }
          return view.phase === "ready" && view.pid !== null && view.pid !== firstPid
        }, 15_000)
      )
      const listed = (yield* Effect.promise(() => control(host, "GET", "/v1/components"))).body as ComponentsBody
      const pids = listed.components.map((c) => c.pid ?? 0)
      expect(pids.every(isAlive)).toBe(true)
      yield* Effect.promise(() => host.stop("SIGKILL"))
      yield* Effect.promise(() => waitUntil(() => pids.every((pid) => !isAlive(pid)), 5_000))
    }))

  it.scopedLive("never passes the host's environment to a module", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir({
        "50-probe.json": {
          components: {
            "probe.env": {
              kind: "http_local_json",
              launch: { executable: "python3", args: [Path.join(fixturesDir, "envprobe.py"), "--port", "{port}"], env: { PROBE_SETTING: "on" } },
              http: { port: "auto" }
            }
          },
          hooks: { probe: ["probe.env"] }
        }
      })
      const host = yield* startHost(dataDir, { CORRAL_TEST_SECRET: "s3cret", AWS_SECRET_ACCESS_KEY: "s3cret-too" })
      const invoked = yield* Effect.promise(() => control(host, "POST", "/v1/hooks/probe/invoke", { id: "p1", subject: "s", payload: {} }))
      const annotations = (invoked.body as { decision: { annotations: Record<string, unknown> } }).decision.annotations
      const keys = annotations["env.keys"] as ReadonlyArray<string>
      expect(annotations["env.values_contain_secret"]).toBe(false)
      expect(keys).not.toContain("CORRAL_TEST_SECRET")
      expect(keys).not.toContain("AWS_SECRET_ACCESS_KEY")
      expect(keys).toEqual(expect.arrayContaining(["PATH", "CORRAL_MODULE_ID", "CORRAL_MODULE_PORT", "CORRAL_DATA_DIR", "PROBE_SETTING"]))
      // Besides PATH, CORRAL_* and the configured env, only what the interpreter adds itself (the
      // pyenv `python3` shim exports PYENV_*; a shell sets PWD, SHLVL, _).
      const interpreterOwn = /^(_?PYENV_\w*|PWD|SHLVL|_|LC_CTYPE)$/
      expect(keys.filter((key) => !key.startsWith("CORRAL_") && key !== "PATH" && key !== "PROBE_SETTING" && !interpreterOwn.test(key))).toEqual([])
    }))

  it.scopedLive("a module that never becomes ready is failed and its process is gone; the rest runs", () =>
    Effect.gen(function*() {
      // Marks this test's module in its argv: other test files run never_ready.py at the same time.
      const marker = `never-ready-${process.pid}-${Date.now()}`
      const dataDir = makeDataDir({
        "50-stuck.json": {
          components: {
            "stuck.module": {
              kind: "http_local_json",
              launch: { executable: "python3", args: [Path.join(fixturesDir, "never_ready.py"), marker] },
              http: { port: "auto", startup_timeout_ms: 1_000 },
              restart_policy: { mode: "on_failure", max_restarts: 3 }
            }
          }
        }
      })
      const host = yield* startHost(dataDir)
      const stuck = host.up.components.find((c) => c.id === "stuck.module")
      expect(stuck?.phase).toBe("failed")
      const view = (yield* Effect.promise(() => control(host, "GET", "/v1/components/stuck.module"))).body as { last_error: string; pid: number | null }
      expect(view.last_error).toContain("not ready within startup_timeout_ms (1000 ms)")
      expect(view.pid).toBeNull()
      expect(processesWhoseArgv((argv) => argv.includes(marker))).toEqual([])
      expect((yield* Effect.promise(() => fetch(`${host.url}/readyz`))).status).toBe(503)
    }))

  it("refuses to start on an invalid operator fragment, naming the file and the path, and starts nothing", () => {
    const dataDir = makeDataDir({ "50-typo.json": { components: { "middleware.dator": { http: { reqest_timeout_ms: 10 } } } } })
    const result = spawnSync(process.execPath, [corralScript, "up", "--data-dir", dataDir], { encoding: "utf8", timeout: 20_000 })
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain(Path.join(dataDir, "config", "50-typo.json"))
    expect(result.stderr).toContain('components["middleware.dator"].http.reqest_timeout_ms')
    expect(result.stderr).toContain("nothing was started")
    expect(Fs.existsSync(Path.join(dataDir, "logs"))).toBe(false)
  })

  it("a data dir that cannot exist (a file in its way) is one clear line and exit 1, not a stack dump", () => {
    const blocker = Path.join(makeDataDir(), "a-file")
    Fs.writeFileSync(blocker, "")
    const result = spawnSync(process.execPath, [corralScript, "up", "--data-dir", Path.join(blocker, "sub")], { encoding: "utf8", timeout: 20_000 })
    expect(result.status).toBe(1)
    expect(result.stderr).toContain(Path.join(blocker, "sub"))
    expect(result.stderr).toContain("nothing was started")
    expect(result.stderr).not.toMatch(/fiber=|cause=|SystemError/)
  })

  it("config show --json prints the effective config", () => {
    const dataDir = makeDataDir({ "50-dator.json": { modules: { dator: { quota: { per_subject: 5, window_sec: 10 } } } } })
    const result = spawnSync(process.execPath, [corralScript, "config", "show", "--json", "--data-dir", dataDir], { encoding: "utf8", timeout: 20_000 })
    expect(result.status).toBe(0)
    const shown = JSON.parse(result.stdout) as { modules: { dator: { quota: { per_subject: number } } }; hooks: Record<string, unknown>; runtime: { data_dir: string } }
    expect(shown.modules.dator.quota.per_subject).toBe(5)
    expect(shown.hooks).toHaveProperty("ingress")
    expect(shown.runtime.data_dir).toBe(dataDir)
  })
})
