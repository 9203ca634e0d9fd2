/**
 * Issue 10, socket activation: the launcher hands the socket the host holds to the child as fd 3, with
 * `LISTEN_PID` equal to the pid that runs the module's code — through every launch chain: no wrapper
 * tools, the PID namespace init, `module-restricted` (setpriv, prlimit, another user) and
 * `module-isolated` (bwrap as the namespace's PID 1), where the module's pid is not the host's view of it.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeProcessLauncher } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { findTools, type LaunchTools } from "../../../../src/layers/host/launcher/SandboxArgv.js"
import { bindHeldSocket, type HeldSocket } from "../../../../src/layers/host/supervisor/HeldSocket.js"
import { listenFdsEnv } from "../../../../src/layers/host/supervisor/ModuleListen.js"
import type { SandboxProfile } from "../../../../src/services/host/HostConfig.js"
import { type ChildHandle, defaultModuleUser, type LaunchSpec } from "../../../../src/services/host/ProcessLauncher.js"

const { tools } = findTools()
const isRoot = process.getuid?.() === 0
const isolatedSkip = !isRoot
  ? "module-isolated switches to another user: needs a root host"
  : tools.bwrap === undefined
  ? "bwrap is not installed (apt-get install bubblewrap)"
  : tools.namespaces === undefined
  ? "this machine gives no PID namespaces"
  : undefined
if (isolatedSkip !== undefined) console.log(`HeldSocketLaunch.test: the module-isolated case is skipped: ${isolatedSkip}`)
if (tools.namespaces === undefined) console.log("HeldSocketLaunch.test: no PID namespaces here: the namespaced cases run as process groups only")

// Searchable by anyone and outside /tmp (the isolated view hides /tmp), so another user can run the probe.
const root = Fs.mkdtempSync(Path.join(Fs.existsSync("/var/tmp") ? "/var/tmp" : Os.tmpdir(), "corral-held-socket-test-"))
Fs.chmodSync(root, 0o755)
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))
const moduleDir = Path.join(root, "probe")
Fs.mkdirSync(moduleDir, { mode: 0o755 })
Fs.chmodSync(moduleDir, 0o755)
const probe = Path.join(moduleDir, "listen_probe.py")
Fs.copyFileSync(Path.resolve(import.meta.dirname, "../../../fixtures/listen_probe.py"), probe)
Fs.chmodSync(probe, 0o644)
let cases = 0

interface Report {
  readonly pid: number
  readonly listen_fds: string | null
  readonly listen_pid: string | null
  readonly fd3: number | string
}

const held = Effect.acquireRelease(
  Effect.suspend(() => {
    const socket = bindHeldSocket({ _tag: "Tcp", port: 0 })
    return typeof socket === "string" ? Effect.die(new Error(socket)) : Effect.succeed(socket)
  }),
  (socket) => Effect.sync(socket.close)
)

const reportOf = (child: ChildHandle) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const line = (yield* child.recentLines).find((candidate) => candidate.startsWith("{"))
      if (line !== undefined) return JSON.parse(line) as Report
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.die(new Error(`no report from the probe: ${(yield* child.recentLines).join("\n")}`))
  })

const probeSpec = (socket: HeldSocket, sandbox: SandboxProfile): LaunchSpec => {
  const cwd = Path.join(root, `work-${cases++}`)
  Fs.mkdirSync(cwd, { mode: 0o700 })
  return {
    name: "held-socket-probe",
    executable: "/usr/bin/python3",
    args: [probe],
    env: { ...listenFdsEnv },
    sandbox,
    runAs: defaultModuleUser,
    cwd,
    ownsCwd: true,
    moduleDir,
    listenFd: socket.fd
  }
}

const launchProbe = (launchTools: LaunchTools, sandbox: SandboxProfile) =>
  Effect.gen(function*() {
    const socket = yield* held
    const launcher = yield* makeProcessLauncher(launchTools)
    const child = yield* launcher.launch(probeSpec(socket, sandbox), 2_000)
    return { socket, child, report: yield* reportOf(child) }
  })

describe("a held socket reaches the module as fd 3 with its own LISTEN_PID", () => {
  it.scopedLive("without wrapper tools: the host's child is the module", () =>
    Effect.gen(function*() {
      const bare: LaunchTools = { ...tools, setpriv: undefined, prlimit: undefined, namespaces: undefined, bwrap: undefined }
      const { child, report, socket } = yield* launchProbe(bare, "none")
      expect(report).toEqual({ pid: child.pid, listen_fds: "1", listen_pid: String(child.pid), fd3: socket.port })
    }))

  it.scopedLive("under the PID namespace init: LISTEN_PID is the module's pid in its namespace, not the host's view", () =>
    Effect.gen(function*() {
      const { child, report, socket } = yield* launchProbe(tools, "none")
      expect(report.fd3).toBe(socket.port)
      expect(report.listen_pid).toBe(String(report.pid))
      if (tools.namespaces !== undefined) expect(report.pid).not.toBe(child.pid)
    }))

  it.scopedLive("module-restricted (setpriv, prlimit, another user on a root host)", () =>
    Effect.gen(function*() {
      const { report, socket } = yield* launchProbe(tools, "module-restricted")
      expect(report).toMatchObject({ listen_fds: "1", listen_pid: String(report.pid), fd3: socket.port })
    }))

  it.scopedLive.skipIf(isolatedSkip !== undefined)("module-isolated (bwrap is the namespace's PID 1)", () =>
    Effect.gen(function*() {
      const { child, report, socket } = yield* launchProbe(tools, "module-isolated")
      expect(report).toMatchObject({ listen_fds: "1", listen_pid: String(report.pid), fd3: socket.port })
      expect(report.pid).not.toBe(child.pid)
    }))

  it.scopedLive("a launch without a held socket gets no fd 3 and no LISTEN_PID", () =>
    Effect.gen(function*() {
      const socket = yield* held
      const launcher = yield* makeProcessLauncher(tools)
      const { listenFd: _, ...spec } = probeSpec(socket, "none")
      const report = yield* reportOf(yield* launcher.launch({ ...spec, env: {} }, 2_000))
      expect(report).toMatchObject({ listen_fds: null, listen_pid: null, fd3: "EBADF" })
    }))
})
