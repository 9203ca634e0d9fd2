/**
 * Issue 8, item 7 (next step): `module-isolated` runs a module in a private mount view built by
 * bubblewrap. On a root host with bwrap: the module sees its own directory read-only, its work dir
 * writable at /media, an empty private /tmp, and nothing of the host's data dir, /root or other modules;
 * a TERM still stops it gracefully; the bundled Dator runs under it through the real host. Without
 * bwrap a launch fails saying to install Debian's bubblewrap.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { resolveModuleUser } from "../../../../src/layers/host/launcher/ModuleUser.js"
import { makeProcessLauncher, ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { detectTools, findTools } from "../../../../src/layers/host/launcher/SandboxArgv.js"
import { defaultModuleUser, type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import { control, makeDataDir, removeDataDirs, startHost } from "../../../support/hostProcess.js"
import { cmdlineOf, descendantsOf, environOf } from "../../../support/procfs.js"

const isRoot = process.getuid?.() === 0
const { tools } = findTools()
const skipReason = !isRoot
  ? "a user switch and a root-built view need a root host (run the suite as root, as CI does)"
  : tools.bwrap === undefined
  ? "bwrap is not installed (apt-get install bubblewrap; .ci/run does it as root)"
  : tools.namespaces === undefined
  ? "this machine gives no PID namespaces"
  : undefined
if (skipReason !== undefined) console.log(`IsolatedModule.test: module-isolated checks skipped: ${skipReason}`)
const skip = skipReason !== undefined

const probeSource = Path.resolve(import.meta.dirname, "../../../fixtures/isolated_probe.py")
// Searchable by anyone and outside /tmp, so only the view, not the modes on the way, hides things.
const root = Fs.mkdtempSync(Path.join(Fs.existsSync("/var/tmp") ? "/var/tmp" : Os.tmpdir(), "corral-isolated-test-"))
Fs.chmodSync(root, 0o755)
const hostTmpMarker = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-isolated-marker-"))
afterAll(() => {
  Fs.rmSync(root, { recursive: true, force: true })
  Fs.rmSync(hostTmpMarker, { recursive: true, force: true })
  removeDataDirs()
})

interface Report {
  readonly uid: number
  readonly cwd: string
  readonly pid: number
  readonly proc_pids: ReadonlyArray<number>
  readonly tmp_before: ReadonlyArray<string>
  readonly read_own_script: string
  readonly sdk_beside: string
  readonly write_own_dir: string
  readonly write_cwd: string
  readonly write_tmp: string
  readonly data_dir: string
  readonly token: string
  readonly root_home: string
  readonly other_module: string
  readonly host_tmp_marker: string
}

/** A modules dir (the probe, an SDK beside it, another module) and a data dir laid out as the host's. */
const layout = () => {
  const base = Fs.mkdtempSync(Path.join(root, "case-"))
  Fs.chmodSync(base, 0o755)
  const modules = Path.join(base, "modules")
  const data = Path.join(base, "data")
  for (const [dir, mode] of [
    [modules, 0o755], [Path.join(modules, "probe"), 0o755], [Path.join(modules, "sdk"), 0o755], [Path.join(modules, "other"), 0o755],
    [data, 0o755], [Path.join(data, "run"), 0o700], [Path.join(data, "work"), 0o700], [Path.join(data, "work", "probe"), 0o700]
  ] as const) {
    Fs.mkdirSync(dir, { recursive: true })
    Fs.chmodSync(dir, mode)
  }
  const script = Path.join(modules, "probe", "isolated_probe.py")
  Fs.copyFileSync(probeSource, script)
  Fs.chmodSync(script, 0o644)
  Fs.writeFileSync(Path.join(modules, "sdk", "marker.py"), "", { mode: 0o644 })
  Fs.writeFileSync(Path.join(modules, "other", "code.py"), "", { mode: 0o644 })
  Fs.writeFileSync(Path.join(data, "run", "control.token"), "host-secret\n", { mode: 0o600 })
  return { modules, data, script }
}

const probeSpec = (where: ReturnType<typeof layout>, mode: ReadonlyArray<string> = []): LaunchSpec => ({
  name: "middleware.probe",
  executable: "python3",
  args: [where.script, JSON.stringify({
    data_dir: where.data,
    token: Path.join(where.data, "run", "control.token"),
    other_module: Path.join(where.modules, "other"),
    host_tmp_marker: hostTmpMarker,
    tmp_name: tmpName
  }), ...mode],
  env: {},
  sandbox: "module-isolated",
  runAs: defaultModuleUser,
  cwd: Path.join(where.data, "work", "probe"),
  ownsCwd: true
})

/** What the module writes in its /tmp: unique, so a file in the host's /tmp by that name can only be a leak. */
const tmpName = `corral-isolated-written-${process.pid}-${Date.now()}`

const limits = { timeoutMs: 10_000, maxStdoutBytes: 65_536 }

describe("module-isolated (bubblewrap view)", () => {
  it.scopedLive.skipIf(skip)("sees its own dir read-only, its work dir writable at /media, a private /tmp, and nothing of the host's", () =>
    Effect.gen(function*() {
      const where = layout()
      const user = yield* Effect.orDie(resolveModuleUser(defaultModuleUser))
      // The module user owns its module dir here: only the read-only view keeps it from writing there.
      Fs.chownSync(Path.join(where.modules, "probe"), user.uid, user.gid)
      const { run } = yield* ProcessLauncher
      const result = yield* run(probeSpec(where), new Uint8Array(), limits)
      expect(result.exit, result.stderrTail).toEqual({ code: 0, signal: null })
      const report = JSON.parse(new TextDecoder().decode(result.stdout)) as Report
      expect(report.uid).toBe(user.uid)
      expect(report.cwd).toBe("/media")
      expect(report.read_own_script).toBe("ok")
      expect(report.sdk_beside).toBe("visible")
      expect(report.write_own_dir).toBe("EROFS")
      expect(report.write_cwd).toBe("ok")
      expect(Fs.readFileSync(Path.join(where.data, "work", "probe", "written-by-module"), "utf8")).toBe("x")
      expect(report.tmp_before).toEqual([])
      expect(report.write_tmp).toBe("ok")
      expect(Fs.existsSync(Path.join("/tmp", tmpName))).toBe(false)
      expect(report.host_tmp_marker).toBe("absent")
      expect(report.data_dir).toBe("absent")
      expect(report.token).toBe("absent")
      expect(report.root_home).toBe("absent")
      expect(report.other_module).toBe("absent")
      // Its own /proc: bwrap (the namespace's PID 1) and the module.
      expect(report.proc_pids).toEqual([1, report.pid])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive.skipIf(skip)("a TERM from the host still reaches the module: the stop is graceful and its exit code passes through", () =>
    Effect.gen(function*() {
      const where = layout()
      const { launch } = yield* ProcessLauncher
      const child = yield* launch(probeSpec(where, ["wait"]), 3_000)
      for (let i = 0; i < 100 && !(yield* child.recentLines).includes("ready"); i++) yield* Effect.sleep(50)
      expect(yield* child.recentLines).toContain("ready")
      const outcome = yield* child.stop(3_000)
      expect(outcome.how).toBe("graceful")
      expect(outcome.exit).toEqual({ code: 0, signal: null })
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("without bwrap a module-isolated launch fails, saying to install Debian's bubblewrap", () =>
    Effect.gen(function*() {
      const detected = yield* detectTools
      const { launch } = yield* makeProcessLauncher({ ...detected, bwrap: undefined })
      const where = layout()
      const error = yield* Effect.flip(launch(probeSpec(where), 1_000))
      expect(error.message).toContain(`cannot start "middleware.probe"`)
      expect(error.message).toContain("apt-get install bubblewrap")
    }))

  it.scopedLive.skipIf(skip)("refuses a module-isolated launch whose module dir is unknown, naming launch.module_dir", () =>
    Effect.gen(function*() {
      const where = layout()
      const { launch } = yield* ProcessLauncher
      const error = yield* Effect.flip(launch({ ...probeSpec(where), args: ["-c", "pass"] }, 1_000))
      expect(error.message).toContain("launch.module_dir")
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive.skipIf(skip)("runs the bundled Dator under module-isolated through the real host, and a hook call passes", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir({
        "60-isolated.json": { components: { "middleware.dator": { sandbox_profile: "module-isolated" } } }
      })
      const host = yield* startHost(dataDir)
      const dator = host.up.components.find((component) => component.id === "middleware.dator")
      expect(dator?.phase).toBe("ready")
      const invoked = yield* Effect.promise(() =>
        control(host, "POST", "/v1/hooks/ingress/invoke", { id: "iso-1", hook: "ingress", subject: "alice", payload: { text: "hi" } })
      )
      expect(invoked.status).toBe(200)
      expect((invoked.body as { decision: { decision: string } }).decision.decision).toBe("allow")
      // What Dator's process sees, from the host's side through /proc/<pid>/root: its view, not the host's.
      // The deepest such process: bwrap (PID 1 of the namespace, outside the view) carries dator.py in its argv too.
      const python = descendantsOf(dator?.pid ?? 0).filter((pid) => cmdlineOf(pid).includes("dator.py")).at(-1)
      expect(python).toBeDefined()
      const view = `/proc/${python}/root`
      const modules = Path.resolve(import.meta.dirname, "../../../../modules")
      expect(Fs.existsSync(Path.join(view, modules, "dator", "dator.py"))).toBe(true)
      expect(Fs.existsSync(Path.join(view, modules, "arca"))).toBe(false)
      expect(Fs.existsSync(Path.join(view, dataDir))).toBe(false)
      expect(Fs.existsSync(Path.join(view, "root"))).toBe(false)
      expect(python === undefined ? undefined : environOf(python).CORRAL_DATA_DIR).toBe("/media")
    }))

  it("config show says whether module-isolated is available here", () => {
    const corral = Path.resolve(import.meta.dirname, "../../../../dist/bin/corral.js")
    const shown = spawnSync(process.execPath, [corral, "config", "show", "--json", "--data-dir", makeDataDir()], { encoding: "utf8", timeout: 20_000 })
    expect(shown.status, shown.stderr).toBe(0)
    const { runtime } = JSON.parse(shown.stdout) as { runtime: { module_isolated_available: boolean; module_isolated_problem?: string } }
    expect(runtime.module_isolated_available).toBe(tools.bwrap !== undefined && tools.namespaces !== undefined)
    if (tools.bwrap === undefined) expect(runtime.module_isolated_problem).toContain("apt-get install bubblewrap")
  })
})
