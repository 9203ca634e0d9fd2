/**
 * Issue 8, item 7: on a root host, `module-restricted` runs the module as an unprivileged user with no
 * capabilities and its own /proc, so it cannot read the control token, reach the broker socket, read
 * the host's environment, other modules' work dirs or logs, yet can write its own work dir. On a
 * non-root host the profile keeps its old behaviour (the launcher warns at start).
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { resolveModuleUser } from "../../../../src/layers/host/launcher/ModuleUser.js"
import { makeProcessLauncher, ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { detectTools } from "../../../../src/layers/host/launcher/SandboxArgv.js"
import { defaultModuleUser, type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("RestrictedUser.test: skipped: a user switch needs a root host (run the suite as root, as CI does)")

const probe = Path.resolve(import.meta.dirname, "../../../fixtures/restricted_probe.py")
// Searchable by anyone, so only the host's own modes (run/ 0700, work/ 0700, 0600 files) stand in the way;
// under /var/tmp where there is one, so the host's modes, not the sticky /tmp, are what is tested.
const root = Fs.mkdtempSync(Path.join(Fs.existsSync("/var/tmp") ? "/var/tmp" : Os.tmpdir(), "corral-restricted-test-"))
Fs.chmodSync(root, 0o755)
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

interface Report {
  readonly uid: number
  readonly groups: ReadonlyArray<number>
  readonly cap_eff: string
  readonly cap_bnd: string
  readonly no_new_privs: string
  readonly executable: string
  readonly pid: number
  readonly proc_pids: ReadonlyArray<number>
  readonly token: string
  readonly broker_socket: string
  readonly host_environ: string
  readonly other_work: string
  readonly other_log: string
  readonly own_work_dir: string
}

/** A data dir laid out as the host lays it out, with a listening broker socket; closed with the scope. */
const dataDir = Effect.gen(function*() {
  const data = Path.join(root, `data-${Math.random().toString(36).slice(2)}`)
  for (const [dir, mode] of [["", 0o755], ["run", 0o700], ["logs", 0o755], ["work", 0o700], ["work/probe", 0o700], ["work/other", 0o700]] as const) {
    Fs.mkdirSync(Path.join(data, dir), { recursive: true })
    Fs.chmodSync(Path.join(data, dir), mode)
  }
  Fs.writeFileSync(Path.join(data, "run", "control.token"), "host-secret\n", { mode: 0o600 })
  Fs.writeFileSync(Path.join(data, "logs", "middleware.other.log"), "other's log\n", { mode: 0o600 })
  Fs.writeFileSync(Path.join(data, "work", "other", "archive"), "other's data\n", { mode: 0o600 })
  const brokerSocket = Path.join(data, "run", "broker.sock")
  const server = Net.createServer((socket) => socket.end())
  yield* Effect.acquireRelease(
    Effect.async<void>((resume) => void server.listen(brokerSocket, () => resume(Effect.void))),
    () => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  )
  return { data, brokerSocket }
})

const probeSpec = (data: string, brokerSocket: string, extra: Partial<LaunchSpec> = {}): LaunchSpec => ({
  name: "middleware.probe",
  executable: "python3",
  args: [probe, JSON.stringify({
    token: Path.join(data, "run", "control.token"),
    broker_socket: brokerSocket,
    host_pid: process.pid,
    other_work: Path.join(data, "work", "other"),
    other_log: Path.join(data, "logs", "middleware.other.log")
  })],
  env: { SECRET_X: "not for modules" },
  sandbox: "module-restricted",
  runAs: defaultModuleUser,
  cwd: Path.join(data, "work", "probe"),
  ownsCwd: true,
  ...extra
})

const limits = { timeoutMs: 10_000, maxStdoutBytes: 65_536 }

describe("module-restricted on a root host", () => {
  it.scopedLive.skipIf(!isRoot)("runs the module as an unprivileged user who reaches nothing of the host's", () =>
    Effect.gen(function*() {
      const { data, brokerSocket } = yield* dataDir
      const user = yield* Effect.orDie(resolveModuleUser(defaultModuleUser))
      // Another restricted module's work dir belongs to the same user: only work/ (0700) keeps it out.
      Fs.chownSync(Path.join(data, "work", "other"), user.uid, user.gid)
      const { run } = yield* ProcessLauncher
      const result = yield* run(probeSpec(data, brokerSocket), new Uint8Array(), limits)
      expect(result.exit, result.stderrTail).toEqual({ code: 0, signal: null })
      const report = JSON.parse(new TextDecoder().decode(result.stdout)) as Report
      expect(report.uid).toBe(user.uid)
      expect(report.uid).not.toBe(0)
      expect(report.groups).toEqual([])
      expect(report.cap_eff).toBe("0000000000000000")
      expect(report.cap_bnd).toBe("0000000000000000")
      expect(report.no_new_privs).toBe("1")
      // Root's python3 is a pyenv shim in the 0700 /root: the module user gets one it can run.
      expect(report.executable.startsWith("/root/")).toBe(false)
      expect(report.token).toBe("EACCES")
      expect(report.broker_socket).toBe("EACCES")
      expect(report.host_environ).not.toBe("ok")
      expect(report.other_work).toBe("EACCES")
      expect(report.other_log).toBe("EACCES")
      expect(report.own_work_dir).toBe("ok")
      expect(Fs.readFileSync(Path.join(data, "work", "probe", "written-by-module"), "utf8")).toBe("x")
      // Its own /proc: the namespace's init and the module, nothing of the host's.
      expect(report.proc_pids).toEqual([1, report.pid])
      const probeDir = Fs.statSync(Path.join(data, "work", "probe"))
      expect([probeDir.uid, probeDir.mode & 0o777]).toEqual([user.uid, 0o700])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive.skipIf(!isRoot)("fails by name when the module user cannot run the executable", () =>
    Effect.gen(function*() {
      const { data, brokerSocket } = yield* dataDir
      const hidden = Path.join(data, "run", "tool")
      Fs.writeFileSync(hidden, "#!/bin/sh\n", { mode: 0o755 })
      const { launch } = yield* ProcessLauncher
      const absolute = yield* Effect.flip(launch(probeSpec(data, brokerSocket, { executable: hidden, args: [] }), 1_000))
      expect(absolute.message).toContain(hidden)
      expect(absolute.message).toContain(`user "${defaultModuleUser}" cannot search ${Path.join(data, "run")} (mode 0700)`)
      const bare = yield* Effect.flip(launch(probeSpec(data, brokerSocket, {
        executable: "tool",
        args: [],
        env: { PATH: Path.join(data, "run") }
      }), 1_000))
      expect(bare.message).toContain(`no copy in PATH=${Path.join(data, "run")} can be run by the module user`)
      expect(bare.message).toContain(hidden)
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive.skipIf(!isRoot)("a non-root host keeps the old profile: the module runs as the host's user", () =>
    Effect.gen(function*() {
      const { data, brokerSocket } = yield* dataDir
      const tools = yield* detectTools
      const { run, switchesUser } = yield* makeProcessLauncher({ ...tools, root: false })
      expect(switchesUser({ sandbox: "module-restricted", runAs: defaultModuleUser })).toBe(false)
      const result = yield* run(probeSpec(data, brokerSocket), new Uint8Array(), limits)
      const report = JSON.parse(new TextDecoder().decode(result.stdout)) as Report
      expect(report.uid).toBe(process.getuid?.())
      expect(report.no_new_privs).toBe("1")
    }))
})
