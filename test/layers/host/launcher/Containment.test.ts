/**
 * Issue 8, item 6: nothing a child starts outlives its component or the host. Each child is the first
 * process of its own PID namespace, so a grandchild that double-forks and calls setsid() — out of the
 * process group, re-parented — still dies on stop and when the host is SIGKILLed, and so does an
 * ordinary helper child, which `setpriv --pdeathsig` alone (direct child only) leaves running.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { detectTools, wrapCommand } from "../../../../src/layers/host/launcher/SandboxArgv.js"
import { type ChildHandle, type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import { killPid } from "../../../support/hostProcess.js"
import { liveSleepers, sleepMarker, waitUntil } from "../../../support/procfs.js"

const escaper = Path.resolve(import.meta.dirname, "../../../fixtures/escaper.py")
const orphanHost = Path.resolve(import.meta.dirname, "../../../support/orphan-host.mjs")

const spec = (name: string, executable: string, args: ReadonlyArray<string>): LaunchSpec => ({
  name,
  executable,
  args,
  env: {},
  sandbox: "none"
})

const waitForLine = (handle: ChildHandle, line: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      if ((yield* handle.recentLines).includes(line)) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`no line "${line}" within 5 s`))
  })

/**
 * Starts `argv` (already wrapped) under a stand-in host, waits until the `sleep <marker>` it starts
 * runs, SIGKILLs the host, and answers whether that sleep is gone within 2 s.
 */
const diesWithKilledHost = (argv: ReadonlyArray<string>, marker: string) =>
  Effect.gen(function*() {
    const host = spawn(process.execPath, [orphanHost, JSON.stringify(argv)], { stdio: ["ignore", "ignore", "inherit"] })
    yield* Effect.addFinalizer(() => Effect.sync(() => host.exitCode === null && host.signalCode === null && host.kill("SIGKILL")))
    expect(yield* waitUntil(() => liveSleepers(marker).length === 1, 5_000)).toBe(true)
    killPid(host.pid)
    const gone = yield* waitUntil(() => liveSleepers(marker).length === 0, 2_000)
    // Never leave the survivor behind for the next test, whatever the assertion says.
    for (const pid of liveSleepers(marker)) process.kill(pid, "SIGKILL")
    return gone
  })

describe("containment: a PID namespace per child", () => {
  it.scopedLive("says the children here are contained by PID namespaces", () =>
    Effect.gen(function*() {
      expect((yield* ProcessLauncher).isolation).toBe("pid-namespace")
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("stop leaves nothing of a module whose grandchild double-forked and called setsid()", () =>
    Effect.gen(function*() {
      const { launch } = yield* ProcessLauncher
      const marker = sleepMarker()
      const child = yield* launch(spec("escaper", "python3", [escaper, marker]), 1_000)
      yield* Effect.addFinalizer(() => Effect.sync(() => liveSleepers(marker).forEach((pid) => process.kill(pid, "SIGKILL"))))
      yield* waitForLine(child, "escaped")
      expect(yield* waitUntil(() => liveSleepers(marker).length === 1, 5_000)).toBe(true)
      const outcome = yield* child.stop(1_000)
      expect(outcome).toEqual({ how: "graceful", exit: { code: null, signal: "SIGTERM" }, survivors: [] })
      expect(liveSleepers(marker)).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("a SIGKILLed host leaves nothing of a module whose grandchild double-forked and called setsid()", () =>
    Effect.gen(function*() {
      const marker = sleepMarker()
      const wrapped = wrapCommand({ executable: "python3", args: [escaper, marker], env: {}, sandbox: "module-restricted" }, yield* detectTools)
      expect(yield* diesWithKilledHost([wrapped.file, ...wrapped.args], marker)).toBe(true)
    }))

  it.scopedLive("a SIGKILLed host leaves no helper child of a broker backend (an ordinary child, same group)", () =>
    Effect.gen(function*() {
      const marker = sleepMarker()
      // Wrapped as the registry launches a backend: its definition's sandbox, "none" by default.
      const backend = { executable: "/bin/sh", args: ["-c", `sleep ${marker} & wait`], env: {}, sandbox: "none" as const }
      const wrapped = wrapCommand(backend, yield* detectTools)
      expect(yield* diesWithKilledHost([wrapped.file, ...wrapped.args], marker)).toBe(true)
    }))

  it.live("passes the command's exit code, stdin and signal death through the namespace's init", () =>
    Effect.gen(function*() {
      const { run } = yield* ProcessLauncher
      const limits = { timeoutMs: 5_000, maxStdoutBytes: 1_000 }
      const exited = yield* run(spec("exit3", "sh", ["-c", "cat; exit 3"]), new TextEncoder().encode("envelope"), limits)
      expect(exited.exit).toEqual({ code: 3, signal: null })
      expect(new TextDecoder().decode(exited.stdout)).toBe("envelope")
      const killed = yield* run(spec("self-kill", "sh", ["-c", "kill -KILL $$"]), new Uint8Array(), limits)
      expect(killed.exit).toEqual({ code: null, signal: "SIGKILL" })
      // The command sees default signal dispositions (the init's shell would have it ignore INT and QUIT).
      const ignored = yield* run(spec("sigign", "grep", ["SigIgn", "/proc/self/status"]), new Uint8Array(), limits)
      expect(new TextDecoder().decode(ignored.stdout).trim()).toBe("SigIgn:\t0000000000000000")
    }).pipe(Effect.provide(ProcessLauncherLive)))
})
