// Over 300 lines: one real-process suite for launch and run, sharing its /proc and waiting helpers.
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { makeProcessLauncher, ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { detectTools, wrapCommand } from "../../../../src/layers/host/launcher/SandboxArgv.js"
import { type ChildHandle, type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import { killPid } from "../../../support/hostProcess.js"
import { groupOf, isAlive, liveSleepers, procStat, sleepMarker, waitUntil } from "../../../support/procfs.js"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-launcher-test-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))
let counter = 0
const freshDir = () => {
  const dir = Path.join(root, `case-${counter++}`)
  Fs.mkdirSync(dir, { recursive: true })
  return dir
}

const orphanHost = Path.resolve(import.meta.dirname, "../../../support/orphan-host.mjs")

const spec = (name: string, executable: string, args: ReadonlyArray<string>, extra: Partial<LaunchSpec> = {}): LaunchSpec => ({
  name,
  executable,
  args,
  env: {},
  sandbox: "none",
  ...extra
})

/** Waits until the child has printed a line matching `pattern`. */
const waitForLine = (handle: ChildHandle, pattern: RegExp) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      const line = (yield* handle.recentLines).find((candidate) => pattern.test(candidate))
      if (line !== undefined) return line
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`no line matching ${pattern} within 5 s`))
  })

const launcher = ProcessLauncher

describe("ProcessLauncherLive", () => {
  it.scopedLive("gives the child exactly PATH and spec.env: no host variable or secret leaks", () =>
    Effect.gen(function*() {
      process.env.CORRAL_TEST_SECRET = "s3cret"
      const { launch } = yield* launcher
      for (const sandbox of ["none", "module-restricted"] as const) {
        const child = yield* launch(spec("env-check", "env", [], { env: { FOO: "bar" }, sandbox }), 1_000)
        yield* child.exit
        const lines = yield* child.recentLines
        expect(lines.some((line) => line.includes("s3cret") || line.includes("CORRAL_TEST_SECRET"))).toBe(false)
        expect([...lines].sort()).toEqual(["FOO=bar", `PATH=${process.env.PATH}`])
      }
    }).pipe(
      Effect.ensuring(Effect.sync(() => delete process.env.CORRAL_TEST_SECRET)),
      Effect.provide(ProcessLauncherLive)
    ))

  it.scopedLive("starts the child as the leader of its own process group", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const child = yield* launch(spec("group", "sleep", ["30"]), 1_000)
      expect(procStat(child.pid)?.pgrp).toBe(child.pid)
      expect(procStat(process.pid)?.pgrp).not.toBe(child.pid)
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("kills the child when its host is SIGKILLed (setpriv --pdeathsig KILL, argv from wrapCommand)", () =>
    Effect.gen(function*() {
      const tools = yield* detectTools
      expect(tools.setpriv).toBeDefined()
      const marker = sleepMarker()
      // Registered first so it runs last: whatever sleep outlived the host (a failed check) is KILLed.
      yield* Effect.addFinalizer(() => Effect.sync(() => liveSleepers(marker).forEach((pid) => process.kill(pid, "SIGKILL"))))
      const wrapped = wrapCommand({ executable: "/bin/sleep", args: [marker], env: {}, sandbox: "none" }, tools)
      const host = spawn(process.execPath, [orphanHost, JSON.stringify([wrapped.file, ...wrapped.args])], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => host.exitCode === null && host.signalCode === null && host.kill("SIGKILL")))
      yield* Effect.async<number>((resume) => {
        host.stdout.once("data", (data: Buffer) => resume(Effect.succeed(Number(data.toString().trim()))))
      }).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the stand-in host printed nothing within 5 s") }),
        Effect.orDie
      )
      expect(yield* waitUntil(() => liveSleepers(marker).length === 1, 2_000)).toBe(true)
      killPid(host.pid)
      expect(yield* waitUntil(() => liveSleepers(marker).length === 0, 2_000)).toBe(true)
    }))

  it.scopedLive("appends stdout and stderr to the log file and rotates it at maxBytes, keeping `keep` files", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const logFile = Path.join(freshDir(), "logs", "chatty.log")
      const a = "a".repeat(299)
      const b = "b".repeat(299)
      const c = "c".repeat(299)
      const script = `echo ${a}; sleep 0.05; echo ${b} >&2; sleep 0.05; echo ${c}`
      const child = yield* launch(
        spec("chatty", "sh", ["-c", script], { logFile, rotation: { maxBytes: 400, keep: 1 } }),
        1_000
      )
      expect(yield* child.exit).toEqual({ code: 0, signal: null })
      expect(Fs.readFileSync(logFile, "utf8")).toBe(`${c}\n`)
      expect(Fs.readFileSync(`${logFile}.1`, "utf8")).toBe(`${b}\n`)
      expect(Fs.existsSync(`${logFile}.2`)).toBe(false)
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("keeps the last recentLines lines of stdout and stderr, including an unfinished last line", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const child = yield* launch(
        spec("recent", "sh", ["-c", "seq 1 100; echo err >&2; sleep 0.05; printf 'no newline'"], { recentLines: 5 }),
        1_000
      )
      yield* child.exit
      expect(yield* child.recentLines).toEqual(["98", "99", "100", "err", "no newline"])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("loses nothing at exit: 10,000 lines are all in the log once exit completes", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const logFile = Path.join(freshDir(), "many.log")
      // ~1 MB: far more than a pipe holds, so output is still in flight when the process exits.
      const padding = "x".repeat(100)
      const child = yield* launch(
        spec("many", "seq", ["-f", `%g ${padding}`, "1", "10000"], {
          logFile,
          rotation: { maxBytes: 10 * 1024 * 1024, keep: 1 }
        }),
        1_000
      )
      expect((yield* child.exit).code).toBe(0)
      const expected = Array.from({ length: 10_000 }, (_, n) => `${n + 1} ${padding}\n`).join("")
      expect(Fs.readFileSync(logFile, "utf8")).toBe(expected)
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("exit waits until the pipes reach end: output written after the leader exits is in the log", () =>
    Effect.gen(function*() {
      // Without a PID namespace a background process may outlive the leader and write late; with one
      // it dies with the leader (see Containment.test.ts), so this drain is checked on process groups.
      const { namespaces: _, ...tools } = yield* detectTools
      const { launch } = yield* makeProcessLauncher({ ...tools, namespaces: undefined })
      const logFile = Path.join(freshDir(), "late.log")
      const child = yield* launch(spec("late", "sh", ["-c", "(sleep 0.2; echo late) & echo early"], { logFile }), 1_000)
      expect(yield* child.exit).toEqual({ code: 0, signal: null })
      expect(Fs.readFileSync(logFile, "utf8")).toBe("early\nlate\n")
    }))

  it.scopedLive("stops a child that honours SIGTERM gracefully, and reports already_exited afterwards", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const child = yield* launch(spec("graceful", "sleep", ["30"]), 1_000)
      const outcome = yield* child.stop(2_000)
      expect(outcome).toEqual({ how: "graceful", exit: { code: null, signal: "SIGTERM" }, survivors: [] })
      expect(isAlive(child.pid)).toBe(false)
      expect((yield* child.stop(2_000)).how).toBe("already_exited")
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("KILLs a child that ignores SIGTERM after timeoutMs, leaving no survivors", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const child = yield* launch(spec("stubborn", "sh", ["-c", "trap '' TERM; echo ready; sleep 30"]), 1_000)
      yield* waitForLine(child, /^ready$/)
      const started = Date.now()
      const outcome = yield* child.stop(300)
      const elapsed = Date.now() - started
      expect(outcome).toEqual({ how: "killed", exit: { code: null, signal: "SIGKILL" }, survivors: [] })
      expect(elapsed).toBeGreaterThanOrEqual(290)
      expect(elapsed).toBeLessThan(1_500)
      expect(groupOf(child.pid)).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("stop leaves no process of the group, even a grandchild that ignores SIGTERM", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const marker = sleepMarker()
      const child = yield* launch(
        spec("parent", "sh", ["-c", `(trap '' TERM; exec sleep ${marker}) & echo started; wait`]),
        1_000
      )
      yield* waitForLine(child, /^started$/)
      expect(yield* waitUntil(() => liveSleepers(marker).length === 1, 2_000)).toBe(true)
      // Graceful under a PID namespace (the grandchild dies with the namespace), killed without one.
      const outcome = yield* child.stop(200)
      expect(outcome.survivors).toEqual([])
      expect(liveSleepers(marker)).toEqual([])
      expect(groupOf(child.pid)).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.live("closing the scope stops the child, within the stop timeout even when it ignores SIGTERM", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const scope = yield* Scope.make()
      const child = yield* Scope.extend(
        launch(spec("scoped", "sh", ["-c", "trap '' TERM; echo ready; sleep 30"], { sandbox: "module-restricted" }), 200),
        scope
      )
      yield* waitForLine(child, /^ready$/)
      const cwd = Fs.readlinkSync(`/proc/${child.pid}/cwd`)
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(1_500)
      expect(groupOf(child.pid)).toEqual([])
      expect(Fs.existsSync(cwd)).toBe(false)
      expect(yield* child.exit).toEqual({ code: null, signal: "SIGKILL" })
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("fails with LaunchError Spawn naming the component and the executable when it is missing", () =>
    Effect.gen(function*() {
      const { launch, run } = yield* launcher
      const bare = yield* Effect.flip(launch(spec("middleware.ghost", "no-such-program-corral", []), 1_000))
      expect(bare.reason).toBe("Spawn")
      expect(bare.message).toContain("middleware.ghost")
      expect(bare.message).toContain("\"no-such-program-corral\" not found in PATH")
      const absolute = yield* Effect.flip(run(spec("ghost.run", "/nonexistent/tool", []), new Uint8Array(), {
        timeoutMs: 1_000,
        maxStdoutBytes: 100
      }))
      expect(absolute.reason).toBe("Spawn")
      expect(absolute.message).toContain("ghost.run")
      expect(absolute.message).toContain("/nonexistent/tool")
      const dir = freshDir()
      Fs.writeFileSync(Path.join(dir, "plain.txt"), "not a program", { mode: 0o644 })
      const notExecutable = yield* Effect.flip(launch(spec("plain", "./plain.txt", [], { cwd: dir }), 1_000))
      expect(notExecutable.message).toContain("not an executable file")
      // The failed launch's private directory is removed at once, not when the caller's scope ends.
      const sandboxed = yield* Effect.flip(launch(spec("ghost.sandboxed", "no-such-program-corral", [], {
        sandbox: "module-restricted"
      }), 1_000))
      expect(sandboxed.reason).toBe("Spawn")
      expect(Fs.readdirSync(Os.tmpdir()).filter((entry) => entry.startsWith("corral-ghost.sandboxed-"))).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.scopedLive("module-restricted: umask 077, no_new_privs, 1024 open files, 4 GiB address space, private cwd", () =>
    Effect.gen(function*() {
      const { launch } = yield* launcher
      const probe = [
        "touch made; stat -c 'mode %a' made",
        "grep NoNewPrivs /proc/self/status",
        "echo \"nofile $(ulimit -n)\"",
        "grep 'Max address space' /proc/self/limits",
        "echo \"cwd $(pwd)\""
      ].join("; ")
      const restricted = yield* launch(spec("mod.restricted", "sh", ["-c", probe], { sandbox: "module-restricted" }), 1_000)
      yield* restricted.exit
      const lines = yield* restricted.recentLines
      expect(lines).toContain("mode 600")
      expect(lines).toContain("NoNewPrivs:\t1")
      expect(lines).toContain("nofile 1024")
      expect(lines.some((line) => /^Max address space\s+4294967296\s+4294967296/.test(line))).toBe(true)
      const cwd = lines.find((line) => line.startsWith("cwd "))?.slice(4) ?? ""
      expect(Path.dirname(cwd)).toBe(Fs.realpathSync(Os.tmpdir()))
      expect(Path.basename(cwd)).toMatch(/^corral-mod\.restricted-/)
      expect(Fs.statSync(cwd).mode & 0o777).toBe(0o700)

      const dir = freshDir()
      const open = yield* launch(spec("mod.none", "sh", ["-c", probe], { cwd: dir }), 1_000)
      yield* open.exit
      const openLines = yield* open.recentLines
      expect(openLines).toContain("NoNewPrivs:\t0")
      expect(openLines).not.toContain("mode 600")
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.live("run: feeds stdin, collects stdout and the stderr tail, and returns a non-zero exit as a result", () =>
    Effect.gen(function*() {
      const { run } = yield* launcher
      const limits = { timeoutMs: 5_000, maxStdoutBytes: 1_000 }
      const echoed = yield* run(spec("cat", "cat", []), new TextEncoder().encode("{\"id\":1}\n"), limits)
      expect(echoed.exit).toEqual({ code: 0, signal: null })
      expect(new TextDecoder().decode(echoed.stdout)).toBe("{\"id\":1}\n")
      const failed = yield* run(spec("fails", "sh", ["-c", "seq 1 5000 >&2; exit 3"]), new Uint8Array(), limits)
      expect(failed.exit.code).toBe(3)
      expect(failed.stderrTail.length).toBe(4_096)
      expect(failed.stderrTail.endsWith("4999\n5000\n")).toBe(true)
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.live("run: past timeoutMs kills the whole group and fails with Timeout", () =>
    Effect.gen(function*() {
      const { run } = yield* launcher
      const marker = sleepMarker()
      const started = Date.now()
      const error = yield* Effect.flip(run(
        spec("slow", "sh", ["-c", `sleep ${marker} & wait`]),
        new Uint8Array(),
        { timeoutMs: 300, maxStdoutBytes: 1_000 }
      ))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("slow")
      expect(Date.now() - started).toBeLessThan(2_000)
      expect(liveSleepers(marker)).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))

  it.live("run: more stdout than maxStdoutBytes kills the group and fails with OutputTooLarge", () =>
    Effect.gen(function*() {
      const { run } = yield* launcher
      const marker = sleepMarker()
      const error = yield* Effect.flip(run(
        spec("flood", "sh", ["-c", `sleep ${marker} & exec yes`]),
        new Uint8Array(),
        { timeoutMs: 5_000, maxStdoutBytes: 10_000 }
      ))
      expect(error.reason).toBe("OutputTooLarge")
      expect(error.message).toContain("10000 bytes")
      expect(liveSleepers(marker)).toEqual([])
    }).pipe(Effect.provide(ProcessLauncherLive)))
})
