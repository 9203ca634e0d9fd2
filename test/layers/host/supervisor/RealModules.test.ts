/**
 * The supervisor on real processes: a module that crashes at start explains itself in `last_error`
 * (its last stderr lines) and `recent_log`; `launch.env_file` values reach the child and appear in no
 * view, trace, log file or host log; a bad env file fails the launch naming the file and line only.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Ref, Schema } from "effect"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { makeModuleClient, ModuleClientLive } from "../../../../src/layers/host/ModuleClient.js"
import { makeSupervisor } from "../../../../src/layers/host/supervisor/Supervisor.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { HostConfig } from "../../../../src/services/host/HostConfig.js"
import { bearerHeaders } from "../../../../src/services/host/ModuleClient.js"
import type { SupervisorShape } from "../../../../src/services/host/Supervisor.js"
import type { LifecycleEvent } from "../../../../src/services/host/Traces.js"

const fixtures = Path.resolve(import.meta.dirname, "../../../fixtures")
const python = "python3"

/** A real supervisor of `components` in a temp data dir, with what it traced and logged. */
const realSupervisor = (components: Readonly<Record<string, unknown>>) =>
  Effect.gen(function*() {
    const dataDir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-realsup-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    const trace = yield* Ref.make<ReadonlyArray<LifecycleEvent>>([])
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.make(({ annotations, message }) => {
      Effect.runSync(Ref.update(logs, (all) => [...all, JSON.stringify({ message, annotations: [...annotations] })]))
    })
    const supervisor = yield* makeSupervisor({
      config: Schema.decodeUnknownSync(HostConfig)({ components }),
      dataDir,
      traceLifecycle: (event) => Ref.update(trace, (all) => [...all, event])
    }).pipe(Effect.provide(Layer.mergeAll(ProcessLauncherLive, ModuleClientLive, LoopbackPortsLive, Logger.replace(Logger.defaultLogger, logger))))
    return { supervisor, dataDir, trace: Ref.get(trace), logs: Ref.get(logs) }
  })

const settledView = (supervisor: SupervisorShape, id: string) => supervisor.settled(id, 15_000)

describe("Supervisor on real processes", () => {
  it.scopedLive("a Python module that crashes at start: last_error ends with its traceback's last lines, recent_log keeps stderr", () =>
    Effect.gen(function*() {
      const { supervisor, trace } = yield* realSupervisor({
        "crash.start": {
          kind: "http_local_json",
          launch: { executable: python, args: [Path.join(fixtures, "crash_at_start.py")] },
          http: { port: "auto", startup_timeout_ms: 10_000 },
          restart_policy: { mode: "on_failure", max_restarts: 1, backoff_initial_ms: 10 }
        }
      })
      yield* supervisor.start("crash.start")
      const failed = yield* settledView(supervisor, "crash.start")
      expect(failed.phase).toBe("failed")
      const [summary, ...stderr] = (failed.last_error ?? "").split("\n")
      expect(summary).toBe(
        "the process exited with code 1 before it was ready; restart budget spent: 1 restarts within 60 s (max 1); last stderr lines:"
      )
      expect(stderr).toHaveLength(5)
      expect(stderr.every((line) => line.length <= 200)).toBe(true)
      expect(stderr.at(-1)).toBe(`RuntimeError: settings file /etc/example.toml is missing ${"x".repeat(250)}`.slice(0, 200))
      expect(stderr.at(-2)).toContain("raise RuntimeError")
      expect(failed.recent_log).toContain("crash_at_start: loading settings")
      expect(failed.recent_log).toContain("Traceback (most recent call last):")
      expect(failed.recent_log.at(-1)).toMatch(/^RuntimeError: settings file/)
      expect(failed.pid).toBeNull()
      // Retried once (a start-up crash under on_failure), then failed.
      expect((yield* trace).map((event) => event.to)).toEqual(["starting", "starting", "failed"])
    }))

  it.scopedLive("env_file values reach the child and never appear in a view, the trace, the log file or the host's log", () =>
    Effect.gen(function*() {
      const secretsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-envfile-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(secretsDir, { recursive: true, force: true })))
      Fs.writeFileSync(Path.join(secretsDir, "probe.env"), "# database credentials\n\nPROBE_TOKEN=s3cret-from-file\nexport PROBE_QUOTED=\"s3cret two\"\n", { mode: 0o600 })
      const { supervisor, dataDir, trace, logs } = yield* realSupervisor({
        "probe.env": {
          kind: "http_local_json",
          // Relative to launch.cwd, as the executable would be.
          launch: { executable: python, args: [Path.join(fixtures, "envprobe.py")], cwd: secretsDir, env_file: "probe.env" },
          http: { port: "auto" }
        }
      })
      yield* supervisor.start("probe.env")
      const ready = yield* settledView(supervisor, "probe.env")
      expect(ready.phase).toBe("ready")
      const route = yield* supervisor.route("probe.env")
      const client = yield* makeModuleClient()
      const reply = yield* client.postJson(route.endpoint ?? "", "/v1/middleware/invoke", { id: "e1", hook: "probe", subject: "s", payload: {} }, {
        timeoutMs: 5_000,
        maxResponseBytes: 65_536
      }, bearerHeaders(route.token ?? ""))
      const annotations = (reply.body as { annotations: Record<string, unknown> }).annotations
      expect(annotations["env.keys"]).toEqual(expect.arrayContaining(["PROBE_TOKEN", "PROBE_QUOTED"]))
      expect(annotations["env.values_contain_secret"]).toBe(true)
      yield* supervisor.restart("probe.env")
      yield* settledView(supervisor, "probe.env")
      yield* supervisor.stop("probe.env")
      const seen = [
        JSON.stringify(yield* supervisor.list),
        JSON.stringify(yield* trace),
        ...(yield* logs),
        Fs.readFileSync(Path.join(dataDir, "logs", "probe.env.log"), "utf8")
      ].join("\n")
      expect((yield* logs).some((line) => line.includes("starting → ready"))).toBe(true)
      expect(seen).toContain("probe.env")
      expect(seen).not.toContain("s3cret")
    }))

  it.scopedLive("a bad env_file line fails the launch naming the file and the line, never a value; a missing file names the file", () =>
    Effect.gen(function*() {
      const secretsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-envfile-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(secretsDir, { recursive: true, force: true })))
      const envFile = Path.join(secretsDir, "bad.env")
      Fs.writeFileSync(envFile, "GOOD=fine\n# comment\nnot an assignment s3cret\n")
      const component = (file: string) => ({
        kind: "http_local_json",
        launch: { executable: python, args: [Path.join(fixtures, "envprobe.py")], env_file: file },
        http: { port: "auto" }
      })
      const { supervisor, trace } = yield* realSupervisor({ "bad.env": component(envFile), "gone.env": component(Path.join(secretsDir, "gone.env")) })
      yield* supervisor.start("bad.env")
      yield* supervisor.start("gone.env")
      const bad = yield* settledView(supervisor, "bad.env")
      expect(bad.phase).toBe("failed")
      expect(bad.last_error).toBe(
        `components.bad.env: launch.env_file ${envFile}: line 3: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit)`
      )
      const gone = yield* settledView(supervisor, "gone.env")
      expect(gone.phase).toBe("failed")
      expect(gone.last_error).toContain(`launch.env_file ${Path.join(secretsDir, "gone.env")} cannot be read: ENOENT`)
      expect(JSON.stringify(yield* trace)).not.toContain("s3cret")
    }))
})
