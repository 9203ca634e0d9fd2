/**
 * ProcessLauncherLive: real children, each leading its own process group and first in its own PID
 * namespace where the machine allows, wrapped in `setpriv --pdeathsig KILL` (and the sandbox tools, with
 * `module-restricted` and `module-isolated` children of a root host switched to their unprivileged user,
 * `module-isolated` ones in a private mount view), with a clean
 * environment, both pipes always drained into a rotating log, and TERM → grace → KILL stops in which
 * every wait is bounded. Here: `launch` and `run`.
 */
import { Cache, Chunk, Deferred, Duration, Effect, ExecutionStrategy, Exit, Layer, Ref, Scope } from "effect"
import {
  type ChildHandle,
  type ExitInfo,
  LaunchError,
  type LaunchSpec,
  ProcessLauncher,
  type ProcessLauncherShape,
  type Rotation,
  type RunResult
} from "../../../services/host/ProcessLauncher.js"
import { checkExecutableTrusted } from "../../system/FileTrust.js"
import { makeRotatingFile, type RotatingFile } from "../../system/RotatingFile.js"
import { type ModuleUser, resolveModuleUser } from "./ModuleUser.js"
import { pumpOutput } from "./OutputPump.js"
import { awaitWithin, killGroup, stopGroup } from "./ProcessGroup.js"
import { moduleDirOf, moduleDirsOf, outsideView } from "./IsolatedView.js"
import {
  detectTools,
  isolatedUnavailable,
  isolationOf,
  type LaunchTools,
  mountsOwnDir,
  ownDirMountPoint,
  restrictedProfile
} from "./SandboxArgv.js"
import { resolveExecutable, spawnError, workingDirectory } from "./SpawnChecks.js"
import { spawnChild } from "./SpawnChild.js"

/** Log rotation when `LaunchSpec.rotation` is not given: 1 MiB per file, three old files kept. */
export const defaultRotation: Rotation = { maxBytes: 1024 * 1024, keep: 3 }

/** Lines of output kept in memory when `LaunchSpec.recentLines` is not given. */
export const defaultRecentLines = 50

/** Lines of stderr alone kept in memory (`ChildHandle.stderrLines`): what explains a crash. */
export const stderrTailLines = 5

/** After the child exits, how long `exit` waits for its pipes to reach end (a grandchild may hold them). */
export const drainGraceMs = 1_000

/** Bytes of stderr a `run` keeps (its tail). */
export const stderrTailBytes = 4_096

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

/**
 * What a spawn needs once the spec is checked: the user to switch to (if any), the directory, the
 * executable, and for `module-isolated` the directories its view holds read-only.
 */
interface Prepared {
  readonly user: ModuleUser | undefined
  readonly cwd: string | undefined
  readonly executable: string
  readonly moduleDirs: ReadonlyArray<string> | undefined
}

/** Resolves (and caches) a `run_as` user; a failure is a sentence naming the user and what to do. */
type UserLookup = (name: string) => Effect.Effect<ModuleUser, string>

/** Whether `spec` runs as another user with `tools`: `module-restricted` or `-isolated`, a `runAs`, and a root host. */
const switchesUser = (tools: LaunchTools) => (spec: Pick<LaunchSpec, "sandbox" | "runAs">): boolean =>
  tools.root && restrictedProfile(spec.sandbox) && spec.runAs !== undefined

/**
 * `module-isolated`: the view's read-only directories, after checking that bwrap and namespaces are
 * here, that the module's directory is known, and that the child's cwd is its own (it is mounted
 * writable, so a shared one, such as the module dir, is refused).
 */
const isolatedDirs = (tools: LaunchTools, spec: LaunchSpec): Effect.Effect<ReadonlyArray<string>, LaunchError> =>
  Effect.suspend(() => {
    const unavailable = isolatedUnavailable(tools)
    if (unavailable !== undefined) return Effect.fail(spawnError(spec, unavailable))
    if (spec.cwd !== undefined && spec.ownsCwd !== true) {
      return Effect.fail(spawnError(spec, `sandbox "module-isolated" mounts the working directory writable; drop launch.cwd (${spec.cwd}) so it gets its own`))
    }
    const moduleDir = moduleDirOf(spec)
    if (moduleDir === undefined) {
      return Effect.fail(spawnError(
        spec,
        spec.moduleDir !== undefined
          ? `sandbox "module-isolated": launch.module_dir "${spec.moduleDir}" is not a directory`
          : "sandbox \"module-isolated\" needs the module's directory: give launch.module_dir, or the script as an absolute path in launch.args"
      ))
    }
    return Effect.succeed(moduleDirsOf(moduleDir))
  })
const prepare = (tools: LaunchTools, users: UserLookup, spec: LaunchSpec): Effect.Effect<Prepared, LaunchError, Scope.Scope> =>
  Effect.gen(function*() {
    let user: ModuleUser | undefined
    if (switchesUser(tools)(spec) && spec.runAs !== undefined) {
      if (tools.setpriv === undefined) {
        return yield* spawnError(spec, `cannot run it as user "${spec.runAs}": setpriv (util-linux) not found`)
      }
      user = yield* Effect.mapError(users(spec.runAs), (detail) => spawnError(spec, detail))
    }
    const moduleDirs = spec.sandbox === "module-isolated" ? yield* isolatedDirs(tools, spec) : undefined
    const cwd = yield* workingDirectory(spec, user)
    const executable = yield* resolveExecutable(spec, spec.cwd ?? process.cwd(), user)
    // Checked again at every launch (not only at config load): a file swapped since then is refused.
    yield* Effect.mapError(checkExecutableTrusted(executable), (untrusted) => spawnError(spec, `refusing to run it: ${untrusted.message}`))
    const hidden = moduleDirs === undefined || tools.bwrap === undefined ? undefined : outsideView(executable, tools.bwrap, moduleDirs)
    if (hidden !== undefined) return yield* spawnError(spec, hidden)
    return { user, cwd, executable, moduleDirs }
  })

const makeLaunch = (tools: LaunchTools, users: UserLookup): ProcessLauncherShape["launch"] => (spec, stopTimeoutMs) =>
  inOwnScope(Effect.gen(function*() {
    const { cwd, executable, moduleDirs, user } = yield* prepare(tools, users, spec)
    const log: RotatingFile | undefined = spec.logFile === undefined
      ? undefined
      : yield* makeRotatingFile(spec.logFile, spec.rotation ?? defaultRotation)
    const limit = Math.max(0, spec.recentLines ?? defaultRecentLines)
    const recent = yield* Ref.make<ReadonlyArray<string>>([])
    const stderrLines = yield* Ref.make<ReadonlyArray<string>>([])
    const drained = yield* Deferred.make<void>()
    const finished = yield* Deferred.make<ExitInfo>()
    const stopPermit = yield* Effect.makeSemaphore(1)
    const writeLog = (chunk: Uint8Array) => (log === undefined ? Effect.void : log.write(chunk))

    // Uninterruptible from spawn until the stop is registered, so no child escapes its scope; the
    // forked fibers are made interruptible again so the scope can end them.
    const spawned = yield* Effect.uninterruptible(Effect.gen(function*() {
      const spawned = yield* spawnChild(spec, executable, cwd, tools, user, moduleDirs)
      const { child } = spawned
      child.stdin.end()
      yield* Effect.forkScoped(Effect.interruptible(
        Effect.all([
          pumpOutput(child.stdout, writeLog, [{ lines: recent, limit }]),
          pumpOutput(child.stderr, writeLog, [{ lines: recent, limit }, { lines: stderrLines, limit: stderrTailLines }])
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
      stderrLines: Ref.get(stderrLines),
      stop: (timeoutMs) => stopPermit.withPermits(1)(stopGroup(spawned, timeoutMs))
    } satisfies ChildHandle
  })).pipe(Effect.annotateLogs("child", spec.name))

const makeRun = (tools: LaunchTools, users: UserLookup): ProcessLauncherShape["run"] => (spec, stdin, limits) =>
  Effect.scoped(Effect.gen(function*() {
    const { cwd, executable, moduleDirs, user } = yield* prepare(tools, users, spec)
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
      spawnChild(spec, executable, cwd, tools, user, moduleDirs),
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
        pumpOutput(child.stdout, collectStdout, []),
        pumpOutput(child.stderr, keepStderr, [])
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

/**
 * A launcher using `tools` as given (tests pass their own; the layer detects them). Users are looked up
 * (and the default one created) once each; a failed lookup is not remembered, so fixing it needs no restart.
 */
export const makeProcessLauncher = (tools: LaunchTools): Effect.Effect<ProcessLauncherShape> =>
  Effect.map(
    Cache.makeWith({
      capacity: 64,
      lookup: resolveModuleUser,
      timeToLive: (exit) => (Exit.isSuccess(exit) ? Duration.infinity : Duration.zero)
    }),
    (cache): ProcessLauncherShape => {
      const users: UserLookup = (name) => cache.get(name)
      return {
        isolation: isolationOf(tools),
        switchesUser: switchesUser(tools),
        ownDirPath: (cwd, sandbox) =>
          (mountsOwnDir(tools) || (sandbox === "module-isolated" && isolatedUnavailable(tools) === undefined) ? ownDirMountPoint : cwd),
        launch: makeLaunch(tools, users),
        run: makeRun(tools, users)
      }
    }
  )

/**
 * The real process launcher. At build it probes for PID namespaces and warns once, loudly, about what
 * children lose here: no `setpriv` or `prlimit`, no PID namespaces, no user switch on a non-root host,
 * no `bwrap` for `module-isolated`.
 */
export const ProcessLauncherLive: Layer.Layer<ProcessLauncher> = Layer.effect(
  ProcessLauncher,
  Effect.flatMap(detectTools, makeProcessLauncher)
)
