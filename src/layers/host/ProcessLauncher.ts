/**
 * ProcessLauncherLive: real children through `node:child_process.spawn`, each leading its own process
 * group, wrapped in `setpriv --pdeathsig KILL` (and the sandbox tools), with a clean environment, both
 * pipes always drained into a rotating log, and TERM → grace → KILL stops in which every wait is bounded.
 */
// Plain spawn rather than @effect/platform Command: Command's kill and scope finalizer wait for exit
// without a bound and extend the host's environment by default; here every wait has a deadline.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Readable } from "node:stream"
import { NodeStream } from "@effect/platform-node"
import { Chunk, Clock, Deferred, Effect, ExecutionStrategy, Exit, Layer, Option, Ref, Scope, Stream } from "effect"
import {
  type ChildHandle,
  type ExitInfo,
  LaunchError,
  type LaunchSpec,
  ProcessLauncher,
  type ProcessLauncherShape,
  type Rotation,
  type RunResult,
  type StopOutcome
} from "../../services/host/ProcessLauncher.js"
import { makeRotatingFile, type RotatingFile } from "../system/RotatingFile.js"

/** Log rotation when `LaunchSpec.rotation` is not given: 1 MiB per file, three old files kept. */
export const defaultRotation: Rotation = { maxBytes: 1024 * 1024, keep: 3 }

/** Lines of output kept in memory when `LaunchSpec.recentLines` is not given. */
export const defaultRecentLines = 50

/** `module-restricted`: the open-files limit (soft and hard). */
export const sandboxOpenFiles = 1024

/** `module-restricted`: the address-space limit, 4 GiB. */
export const sandboxAddressSpaceBytes = 4 * 1024 * 1024 * 1024

/** After KILL, how long a stop waits for the group to empty before reporting survivors. */
export const killWaitMs = 2_000

/** After the child exits, how long `exit` waits for its pipes to reach end (a grandchild may hold them). */
export const drainGraceMs = 1_000

/** Bytes of stderr a `run` keeps (its tail). */
export const stderrTailBytes = 4_096

const pollMs = 10
const maxLineChars = 8_192

/** Helper programs the launcher wraps children with; an absent one (`undefined`) is skipped. */
export interface LaunchTools {
  readonly setpriv: string | undefined
  readonly prlimit: string | undefined
  readonly shell: string
}

/** The program and arguments actually passed to `spawn`. */
export interface WrappedCommand {
  readonly file: string
  readonly args: ReadonlyArray<string>
}

/**
 * Builds the real argv (pure): `setpriv --pdeathsig KILL [--no-new-privs] --`, then for
 * `module-restricted` `prlimit --nofile --as --` and `sh -c 'umask 077; exec "$@"'`, then the command.
 */
export const wrapCommand = (
  command: Pick<LaunchSpec, "executable" | "args" | "sandbox" | "env">,
  tools: LaunchTools
): WrappedCommand => {
  const restricted = command.sandbox === "module-restricted"
  let argv: ReadonlyArray<string> = command.args
  let file = command.executable
  const prepend = (program: string, ...options: ReadonlyArray<string>) => {
    argv = [...options, file, ...argv]
    file = program
  }
  if (restricted) {
    // The shell exports PWD on its own; unset it so the environment stays exactly PATH + env.
    const script = "PWD" in command.env ? "umask 077; exec \"$@\"" : "umask 077; unset PWD; exec \"$@\""
    prepend(tools.shell, "-c", script, "sh")
    if (tools.prlimit !== undefined) {
      prepend(
        tools.prlimit,
        `--nofile=${sandboxOpenFiles}:${sandboxOpenFiles}`,
        `--as=${sandboxAddressSpaceBytes}`,
        "--"
      )
    }
  }
  if (tools.setpriv !== undefined) {
    prepend(tools.setpriv, "--pdeathsig", "KILL", ...(restricted ? ["--no-new-privs"] : []), "--")
  }
  return { file, args: argv }
}

const firstExecutable = (candidates: ReadonlyArray<string>): string | undefined =>
  candidates.find((candidate) => executableStatus(candidate) === "ok")

/** Finds `setpriv` and `prlimit` (Linux only) and the shell; an absent tool is logged once here. */
export const detectTools: Effect.Effect<LaunchTools> = Effect.gen(function*() {
  const linux = process.platform === "linux"
  const setpriv = linux ? firstExecutable(["/usr/bin/setpriv", "/bin/setpriv"]) : undefined
  const prlimit = linux ? firstExecutable(["/usr/bin/prlimit", "/bin/prlimit"]) : undefined
  if (setpriv === undefined) {
    yield* Effect.logWarning(
      "setpriv not found (util-linux): children run unwrapped and outlive the host if it is SIGKILLed; " +
        "sandbox \"module-restricted\" also loses no_new_privs"
    )
  }
  if (linux && prlimit === undefined) {
    yield* Effect.logWarning(
      "prlimit not found (util-linux): sandbox \"module-restricted\" runs without its open-files and memory limits"
    )
  }
  return { setpriv, prlimit, shell: "/bin/sh" }
})

/** The environment a child gets: exactly the host's `PATH` (or a default) plus `env`. */
export const childEnvironment = (env: Readonly<Record<string, string>>): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  ...env
})

type ExecutableStatus = "ok" | "missing" | "not_executable"

function executableStatus(file: string): ExecutableStatus {
  const stat = Fs.statSync(file, { throwIfNoEntry: false })
  if (stat === undefined) return "missing"
  if (!stat.isFile()) return "not_executable"
  try {
    Fs.accessSync(file, Fs.constants.X_OK)
    return "ok"
  } catch {
    return "not_executable"
  }
}

const spawnError = (spec: LaunchSpec, detail: string) =>
  new LaunchError({ name: spec.name, reason: "Spawn", message: `cannot start "${spec.name}": ${detail}` })

/**
 * Resolves the executable as `execvp` would (a name with a `/` against `cwd`, a bare name through the
 * child's PATH) so a missing one fails here, by name, rather than as the wrapper exiting 127.
 */
const resolveExecutable = (spec: LaunchSpec, base: string): Effect.Effect<string, LaunchError> =>
  Effect.suspend(() => {
    const executable = spec.executable
    if (executable.includes("/")) {
      const file = Path.resolve(base, executable)
      const status = executableStatus(file)
      return status === "ok"
        ? Effect.succeed(file)
        : Effect.fail(spawnError(
          spec,
          status === "missing"
            ? `executable "${executable}" does not exist (looked at ${file})`
            : `executable "${executable}" (${file}) is not an executable file; check its mode`
        ))
    }
    const searchPath = childEnvironment(spec.env).PATH ?? ""
    let notExecutable: string | undefined
    for (const dir of searchPath.split(":")) {
      if (dir === "") continue
      const file = Path.resolve(base, dir, executable)
      const status = executableStatus(file)
      if (status === "ok") return Effect.succeed(file)
      if (status === "not_executable") notExecutable ??= file
    }
    return Effect.fail(spawnError(
      spec,
      notExecutable === undefined
        ? `executable "${executable}" not found in PATH=${searchPath}; give an absolute path or set env.PATH`
        : `executable "${executable}" found at ${notExecutable} but it is not executable; check its mode`
    ))
  })

/**
 * The child's working directory: `spec.cwd` (checked), or for `module-restricted` a private 0700
 * directory under the OS temp dir, removed when the scope closes; otherwise the host's.
 */
const workingDirectory = (spec: LaunchSpec): Effect.Effect<string | undefined, LaunchError, Scope.Scope> => {
  if (spec.cwd !== undefined) {
    const cwd = spec.cwd
    return Fs.statSync(cwd, { throwIfNoEntry: false })?.isDirectory() === true
      ? Effect.succeed(cwd)
      : Effect.fail(spawnError(spec, `working directory "${cwd}" does not exist or is not a directory`))
  }
  if (spec.sandbox !== "module-restricted") return Effect.succeed(undefined)
  return Effect.acquireRelease(
    Effect.try({
      try: () => {
        const safeName = spec.name.replace(/[^A-Za-z0-9._-]/g, "_")
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `corral-${safeName}-`))
        Fs.chmodSync(dir, 0o700)
        return dir
      },
      catch: (error) => spawnError(spec, `cannot create a private working directory: ${describe(error)}`)
    }),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

interface Spawned {
  readonly child: ChildProcessWithoutNullStreams
  readonly pid: number
  readonly exited: Deferred.Deferred<ExitInfo>
}

/**
 * Spawns `spec` (already resolved to `executable`) as a process-group leader and waits for Node's
 * `spawn` or `error` event. Run it uninterruptibly and register the stop right after.
 */
const spawnChild = (
  spec: LaunchSpec,
  executable: string,
  cwd: string | undefined,
  tools: LaunchTools
): Effect.Effect<Spawned, LaunchError> =>
  Effect.flatMap(Deferred.make<ExitInfo>(), (exited) =>
    Effect.async<Spawned, LaunchError>((resume) => {
      const command = wrapCommand({ ...spec, executable }, tools)
      const via = command.file === executable ? "" : ` (through ${command.file})`
      let child: ChildProcessWithoutNullStreams
      try {
        // stdio left at its default: all three piped (a long-lived child's stdin is ended at once).
        child = spawn(command.file, command.args, {
          ...(cwd === undefined ? {} : { cwd }),
          env: childEnvironment(spec.env),
          detached: true
        })
      } catch (error) {
        resume(Effect.fail(spawnError(spec, `spawn of "${executable}"${via} failed: ${describe(error)}`)))
        return
      }
      // A child that never reads stdin makes our write fail with EPIPE: its exit tells the story.
      child.stdin.on("error", () => undefined)
      child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Exit.succeed({ code, signal })))
      const onSpawn = () => {
        child.off("error", onError)
        // Later errors come only from `child.kill`, which is never used (signals go to the group).
        child.on("error", () => undefined)
        const pid = child.pid
        resume(
          pid === undefined
            ? Effect.fail(spawnError(spec, `spawn of "${executable}"${via} gave no pid`))
            : Effect.succeed({ child, pid, exited })
        )
      }
      const onError = (error: Error) => {
        child.off("spawn", onSpawn)
        resume(Effect.fail(spawnError(spec, `spawn of "${executable}"${via} failed: ${error.message}`)))
      }
      child.once("spawn", onSpawn)
      child.once("error", onError)
    }))

/** Sends `signal` to the whole group led by `pgid`; false when the group is already empty. */
const signalGroup = (pgid: number, signal: NodeJS.Signals | 0): boolean => {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/** Live (non-zombie) members of the group led by `pgid`, from `/proc/<pid>/stat` on Linux. */
const groupMembers = (pgid: number): ReadonlyArray<number> => {
  if (!signalGroup(pgid, 0)) return []
  if (process.platform !== "linux") return [pgid]
  const members: Array<number> = []
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
    } catch {
      continue
    }
    // Fields after the command name (which may hold spaces and parentheses): state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const state = fields[0]
    if (Number(fields[2]) === pgid && state !== "Z" && state !== "X") members.push(Number(entry))
  }
  return members
}

/** Polls `done` every few ms until it holds or `ms` pass; only sleeps, so it is bounded in a finalizer too. */
const pollUntil = (done: Effect.Effect<boolean>, ms: number): Effect.Effect<boolean> =>
  Effect.flatMap(Clock.currentTimeMillis, (start) => {
    const loop: Effect.Effect<boolean> = Effect.flatMap(done, (ok) =>
      ok
        ? Effect.succeed(true)
        : Effect.flatMap(Clock.currentTimeMillis, (now) =>
          now - start >= ms ? Effect.succeed(false) : Effect.zipRight(Effect.sleep(pollMs), loop)))
    return loop
  })

/** Waits for `deferred` at most `ms`; interruptible inside, so the bound holds in a finalizer too. */
const awaitWithin = <A>(deferred: Deferred.Deferred<A>, ms: number): Effect.Effect<Option.Option<A>> =>
  Effect.timeoutOption(Effect.interruptible(Deferred.await(deferred)), ms)

const groupEmpty = (pgid: number) => Effect.sync(() => groupMembers(pgid).length === 0)

/** KILLs what is left of the group and waits (bounded) until it is empty; returns the survivors. */
const killGroup = (pgid: number): Effect.Effect<ReadonlyArray<number>> =>
  Effect.suspend(() => {
    if (!signalGroup(pgid, "SIGKILL")) return Effect.succeed([])
    return Effect.zipRight(pollUntil(groupEmpty(pgid), killWaitMs), Effect.sync(() => groupMembers(pgid)))
  })

const unknownExit: ExitInfo = { code: null, signal: null }

/** TERM → `timeoutMs` → KILL for the group led by `spawned.pid`; see `ChildHandle.stop`. */
const stopGroup = (spawned: Spawned, timeoutMs: number): Effect.Effect<StopOutcome> =>
  Effect.gen(function*() {
    const { exited, pid } = spawned
    const exitOf = Effect.map(Deferred.poll(exited), Option.isSome)
    if (yield* exitOf) {
      const survivors = yield* killGroup(pid)
      return { how: "already_exited", exit: yield* Deferred.await(exited), survivors } satisfies StopOutcome
    }
    signalGroup(pid, "SIGTERM")
    const gone = Effect.flatMap(exitOf, (leaderExited) => (leaderExited ? groupEmpty(pid) : Effect.succeed(false)))
    if (yield* pollUntil(gone, timeoutMs)) {
      return { how: "graceful", exit: yield* Deferred.await(exited), survivors: [] } satisfies StopOutcome
    }
    const survivors = yield* killGroup(pid)
    const exit = yield* awaitWithin(exited, survivors.includes(pid) ? 0 : killWaitMs)
    return { how: "killed", exit: Option.getOrElse(exit, () => unknownExit), survivors } satisfies StopOutcome
  })

/** A pipe could not be read (rare: the fd went away); logged, and the pump ends. */
class OutputReadFailed {
  readonly _tag = "OutputReadFailed"
  constructor(readonly cause: unknown) {}
}

/** Appends `complete` lines to `lines`, keeping the last `limit` (oldest first). */
const appendLines = (lines: ReadonlyArray<string>, complete: ReadonlyArray<string>, limit: number) => {
  if (complete.length === 0) return lines
  const all = [...lines, ...complete]
  return all.length > limit ? all.slice(all.length - limit) : all
}

/**
 * Reads `readable` to its end, handing each chunk to `onChunk` and each complete line to `recent`
 * (lines are capped at 8 KiB; the unfinished tail is owned by this fiber alone).
 */
const pumpOutput = (
  readable: Readable,
  onChunk: (chunk: Uint8Array) => Effect.Effect<void, LaunchError>,
  recent: Ref.Ref<ReadonlyArray<string>> | undefined,
  limit: number
): Effect.Effect<void, LaunchError> =>
  Effect.suspend(() => {
    const decoder = new TextDecoder()
    let partial = ""
    const takeLines = (text: string): ReadonlyArray<string> => {
      const parts = (partial + text).split("\n")
      partial = parts.pop() ?? ""
      if (partial.length > maxLineChars) {
        parts.push(partial.slice(0, maxLineChars))
        partial = ""
      }
      return parts.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line))
    }
    const remember = (complete: ReadonlyArray<string>) =>
      recent === undefined ? Effect.void : Ref.update(recent, (lines) => appendLines(lines, complete, limit))
    return NodeStream.fromReadable(() => readable, (cause) => new OutputReadFailed(cause)).pipe(
      Stream.runForEach((chunk) =>
        Effect.zipRight(onChunk(chunk), remember(takeLines(decoder.decode(chunk, { stream: true }))))
      ),
      Effect.catchTag("OutputReadFailed", (error) =>
        Effect.logWarning(`reading child output failed: ${describe(error.cause)}`)),
      Effect.zipRight(Effect.suspend(() => {
        const rest = partial + decoder.decode()
        partial = ""
        return rest === "" ? Effect.void : remember([rest])
      }))
    )
  })

/**
 * Runs `acquire` in a child of the caller's scope, closed at once if `acquire` fails, so a failed launch
 * does not keep its private directory or log fd until the caller's (possibly long-lived) scope ends.
 */
const inOwnScope = <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>): Effect.Effect<A, E, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (parent) =>
    Effect.flatMap(Scope.fork(parent, ExecutionStrategy.sequential), (scope) =>
      acquire.pipe(
        Scope.extend(scope),
        Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
      )))

const makeLaunch = (tools: LaunchTools): ProcessLauncherShape["launch"] => (spec, stopTimeoutMs) =>
  inOwnScope(Effect.gen(function*() {
    const cwd = yield* workingDirectory(spec)
    const executable = yield* resolveExecutable(spec, spec.cwd ?? process.cwd())
    const log: RotatingFile | undefined = spec.logFile === undefined
      ? undefined
      : yield* makeRotatingFile(spec.logFile, spec.rotation ?? defaultRotation)
    const limit = Math.max(0, spec.recentLines ?? defaultRecentLines)
    const recent = yield* Ref.make<ReadonlyArray<string>>([])
    const drained = yield* Deferred.make<void>()
    const finished = yield* Deferred.make<ExitInfo>()
    const stopPermit = yield* Effect.makeSemaphore(1)
    const writeLog = (chunk: Uint8Array) => (log === undefined ? Effect.void : log.write(chunk))

    // Uninterruptible from spawn until the stop is registered, so no child escapes its scope; the
    // forked fibers are made interruptible again so the scope can end them.
    const spawned = yield* Effect.uninterruptible(Effect.gen(function*() {
      const spawned = yield* spawnChild(spec, executable, cwd, tools)
      const { child } = spawned
      child.stdin.end()
      yield* Effect.forkScoped(Effect.interruptible(
        Effect.all([
          pumpOutput(child.stdout, writeLog, recent, limit),
          pumpOutput(child.stderr, writeLog, recent, limit)
        ], { concurrency: 2, discard: true }).pipe(
          Effect.catchAll(() => Effect.void),
          Effect.ensuring(Deferred.succeed(drained, undefined))
        )
      ))
      yield* Effect.forkScoped(Effect.interruptible(
        Effect.flatMap(Deferred.await(spawned.exited), (info) =>
          Effect.zipRight(awaitWithin(drained, drainGraceMs), Deferred.succeed(finished, info)))
      ))
      yield* Effect.addFinalizer(() =>
        stopPermit.withPermits(1)(stopGroup(spawned, stopTimeoutMs)).pipe(
          Effect.tap((outcome) =>
            outcome.survivors.length > 0
              ? Effect.logWarning(`"${spec.name}" (pid ${spawned.pid}): processes survived KILL`, outcome.survivors)
              : Effect.void
          ),
          Effect.tap(() => awaitWithin(drained, drainGraceMs)),
          // Whoever still awaits `exit` is answered even if a pipe never reached its end.
          Effect.flatMap((outcome) => Deferred.succeed(finished, outcome.exit))
        )
      )
      return spawned
    }))

    return {
      pid: spawned.pid,
      exit: Deferred.await(finished),
      recentLines: Ref.get(recent),
      stop: (timeoutMs) => stopPermit.withPermits(1)(stopGroup(spawned, timeoutMs))
    } satisfies ChildHandle
  })).pipe(Effect.annotateLogs("child", spec.name))

const makeRun = (tools: LaunchTools): ProcessLauncherShape["run"] => (spec, stdin, limits) =>
  Effect.scoped(Effect.gen(function*() {
    const cwd = yield* workingDirectory(spec)
    const executable = yield* resolveExecutable(spec, spec.cwd ?? process.cwd())
    const log: RotatingFile | undefined = spec.logFile === undefined
      ? undefined
      : yield* makeRotatingFile(spec.logFile, spec.rotation ?? defaultRotation)
    const stdout = yield* Ref.make({ chunks: Chunk.empty<Uint8Array>(), size: 0 })
    const stderrTail = yield* Ref.make(new Uint8Array(0))
    const drained = yield* Deferred.make<void>()
    const outcome = yield* Deferred.make<ExitInfo, LaunchError>()

    const tooLarge = new LaunchError({
      name: spec.name,
      reason: "OutputTooLarge",
      message: `run of "${spec.name}" (${executable}) wrote more than ${limits.maxStdoutBytes} bytes to stdout; ` +
        "its process group was killed"
    })
    const collectStdout = (chunk: Uint8Array) =>
      Effect.flatMap(
        Ref.modify(stdout, (state) => {
          const size = state.size + chunk.byteLength
          return size > limits.maxStdoutBytes
            ? [false, state] as const
            : [true, { chunks: Chunk.append(state.chunks, chunk), size }] as const
        }),
        (fits) => (fits ? Effect.void : Effect.fail(tooLarge))
      )
    const keepStderr = (chunk: Uint8Array) =>
      Effect.zipRight(
        Ref.update(stderrTail, (tail) => {
          const joined = new Uint8Array(tail.byteLength + chunk.byteLength)
          joined.set(tail)
          joined.set(chunk, tail.byteLength)
          return joined.byteLength > stderrTailBytes ? joined.slice(joined.byteLength - stderrTailBytes) : joined
        }),
        log === undefined ? Effect.void : log.write(chunk)
      )

    // The release KILLs whatever is left of the group (after a timeout, an overflow, or background
    // processes of a finished command), bounded like every other wait.
    const spawned = yield* Effect.acquireRelease(
      spawnChild(spec, executable, cwd, tools),
      (spawned) =>
        Effect.flatMap(killGroup(spawned.pid), (survivors) =>
          survivors.length > 0
            ? Effect.logWarning(`run of "${spec.name}": processes survived KILL`, survivors)
            : Effect.void)
    )
    const { child } = spawned
    child.stdin.end(stdin)
    yield* Effect.forkScoped(
      Effect.all([
        pumpOutput(child.stdout, collectStdout, undefined, 0),
        pumpOutput(child.stderr, keepStderr, undefined, 0)
      ], { concurrency: 2, discard: true }).pipe(
        Effect.catchAll((error) => Deferred.fail(outcome, error)),
        Effect.ensuring(Deferred.succeed(drained, undefined))
      )
    )
    yield* Effect.forkScoped(
      Effect.flatMap(Deferred.await(spawned.exited), (info) =>
        Effect.zipRight(awaitWithin(drained, drainGraceMs), Deferred.succeed(outcome, info)))
    )
    const exit = yield* Effect.interruptible(Deferred.await(outcome)).pipe(
      Effect.timeoutFail({
        duration: limits.timeoutMs,
        onTimeout: () =>
          new LaunchError({
            name: spec.name,
            reason: "Timeout",
            message: `run of "${spec.name}" (${executable}) did not finish within ${limits.timeoutMs} ms; ` +
              "its process group was killed"
          })
      })
    )
    const collected = yield* Ref.get(stdout)
    const bytes = new Uint8Array(collected.size)
    let offset = 0
    for (const chunk of collected.chunks) {
      bytes.set(chunk, offset)
      offset += chunk.byteLength
    }
    const tail = new TextDecoder().decode(yield* Ref.get(stderrTail))
    return { exit, stdout: bytes, stderrTail: tail } satisfies RunResult
  })).pipe(Effect.annotateLogs("child", spec.name))

/** A launcher using `tools` as given (tests pass their own; the layer detects them). */
export const makeProcessLauncher = (tools: LaunchTools): ProcessLauncherShape => ({
  launch: makeLaunch(tools),
  run: makeRun(tools)
})

/** The real process launcher; warns once at build when `setpriv` or `prlimit` is missing. */
export const ProcessLauncherLive: Layer.Layer<ProcessLauncher> = Layer.effect(
  ProcessLauncher,
  Effect.map(detectTools, makeProcessLauncher)
)
