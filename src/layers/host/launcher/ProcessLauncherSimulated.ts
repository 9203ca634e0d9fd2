/**
 * ProcessLauncherSimulated: a deterministic process launcher for supervisor tests under `TestClock`.
 * No real process starts: a test sees each launch, makes a process crash or ignore TERM, scripts
 * launch failures and `run` results; a TERM-ignoring process is KILLed after `timeoutMs` on the Clock.
 */
import { Deferred, Effect, Layer, Option, Queue, Ref } from "effect"
import {
  type ChildHandle,
  type ExitInfo,
  LaunchError,
  type LaunchSpec,
  ProcessLauncher,
  type ProcessLauncherShape,
  type RunResult,
  type StopOutcome
} from "../../../services/host/ProcessLauncher.js"

/** The first fake pid; the n-th launch (from 0) gets `firstSimulatedPid + n`. */
export const firstSimulatedPid = 100_000

/** One `launch` the simulation accepted. */
export interface SimulatedLaunch {
  readonly pid: number
  readonly spec: LaunchSpec
  readonly stopTimeoutMs: number
}

/** One `run` call, as the simulation received it. */
export interface SimulatedRun {
  readonly spec: LaunchSpec
  readonly stdin: Uint8Array
  readonly limits: { readonly timeoutMs: number; readonly maxStdoutBytes: number }
}

/** Decides a launch: succeed to start a simulated process, fail to refuse it (as a spawn error would). */
export type LaunchScript = (spec: LaunchSpec) => Effect.Effect<void, LaunchError>

/** Produces a `run`'s result; it may sleep (on the Clock) to simulate a slow command. */
export type RunScript = (run: SimulatedRun) => Effect.Effect<RunResult, LaunchError>

/** The test's remote control over the simulated processes. */
export interface SimulatedProcesses {
  /** Every accepted launch so far, oldest first. */
  readonly launches: Effect.Effect<ReadonlyArray<SimulatedLaunch>>
  /** Waits for the next accepted launch (each launch is delivered once). */
  readonly nextLaunch: Effect.Effect<SimulatedLaunch>
  /** Pids of simulated processes that have not exited. */
  readonly running: Effect.Effect<ReadonlyArray<number>>
  /** Makes `pid` exit with `code` now (no effect if it already exited or is unknown). */
  readonly crash: (pid: number, code: number) => Effect.Effect<void>
  /** Makes `pid` ignore TERM: a stop then waits its full `timeoutMs` and KILLs it. */
  readonly ignoreTerm: (pid: number) => Effect.Effect<void>
  /** Appends `line` to `pid`'s recent output (and to its stderr lines when `stream` is `stderr`). */
  readonly emit: (pid: number, line: string, stream?: "stdout" | "stderr") => Effect.Effect<void>
  /** Replaces how launches are decided (default: every launch starts). */
  readonly scriptLaunch: (script: LaunchScript) => Effect.Effect<void>
  /** Replaces how `run` answers (default: exit 0, empty stdout). */
  readonly scriptRun: (script: RunScript) => Effect.Effect<void>
  /** Every `run` call so far, oldest first. */
  readonly runs: Effect.Effect<ReadonlyArray<SimulatedRun>>
}

interface SimulatedProcess {
  readonly launch: SimulatedLaunch
  readonly exited: Deferred.Deferred<ExitInfo>
  readonly ignoresTerm: Ref.Ref<boolean>
  readonly lines: Ref.Ref<ReadonlyArray<string>>
  readonly stderr: Ref.Ref<ReadonlyArray<string>>
}

/** Appends `line`, keeping the last `limit`. */
const keepLast = (lines: ReadonlyArray<string>, line: string, limit: number) => {
  const next = [...lines, line]
  return next.length > limit ? next.slice(next.length - limit) : next
}

const emptyOutput = new Uint8Array(0)

/** Builds a fresh simulation: its layer provides `ProcessLauncher`, its control drives the processes. */
export const makeSimulatedLauncher: Effect.Effect<{
  readonly layer: Layer.Layer<ProcessLauncher>
  readonly control: SimulatedProcesses
}> = Effect.gen(function*() {
  const processes = yield* Ref.make<ReadonlyMap<number, SimulatedProcess>>(new Map())
  const launched = yield* Ref.make<ReadonlyArray<SimulatedLaunch>>([])
  const launchQueue = yield* Queue.unbounded<SimulatedLaunch>()
  const runCalls = yield* Ref.make<ReadonlyArray<SimulatedRun>>([])
  const nextPid = yield* Ref.make(firstSimulatedPid)
  const launchScript = yield* Ref.make<LaunchScript>(() => Effect.void)
  const runScript = yield* Ref.make<RunScript>(() =>
    Effect.succeed({ exit: { code: 0, signal: null }, stdout: emptyOutput, stderrTail: "" })
  )

  const find = (pid: number) => Effect.map(Ref.get(processes), (map) => Option.fromNullable(map.get(pid)))
  const withProcess = (pid: number, f: (process: SimulatedProcess) => Effect.Effect<unknown>) =>
    Effect.flatMap(find(pid), Option.match({ onNone: () => Effect.void, onSome: (process) => Effect.asVoid(f(process)) }))

  const stop = (process: SimulatedProcess, timeoutMs: number): Effect.Effect<StopOutcome> =>
    Effect.gen(function*() {
      const { exited } = process
      if (yield* Deferred.isDone(exited)) {
        return { how: "already_exited", exit: yield* Deferred.await(exited), survivors: [] } satisfies StopOutcome
      }
      if (!(yield* Ref.get(process.ignoresTerm))) {
        yield* Deferred.succeed(exited, { code: null, signal: "SIGTERM" })
      }
      // Interruptible inside, so the deadline holds in a (uninterruptible) scope finalizer too.
      const before = yield* Effect.timeoutOption(Effect.interruptible(Deferred.await(exited)), timeoutMs)
      if (Option.isSome(before)) return { how: "graceful", exit: before.value, survivors: [] } satisfies StopOutcome
      yield* Deferred.succeed(exited, { code: null, signal: "SIGKILL" })
      return { how: "killed", exit: yield* Deferred.await(exited), survivors: [] } satisfies StopOutcome
    })

  const launch: ProcessLauncherShape["launch"] = (spec, stopTimeoutMs) =>
    Effect.gen(function*() {
      yield* Effect.flatMap(Ref.get(launchScript), (script) => script(spec))
      const pid = yield* Ref.getAndUpdate(nextPid, (n) => n + 1)
      const process: SimulatedProcess = {
        launch: { pid, spec, stopTimeoutMs },
        exited: yield* Deferred.make<ExitInfo>(),
        ignoresTerm: yield* Ref.make(false),
        lines: yield* Ref.make<ReadonlyArray<string>>([]),
        stderr: yield* Ref.make<ReadonlyArray<string>>([])
      }
      yield* Ref.update(processes, (map) => new Map(map).set(pid, process))
      yield* Ref.update(launched, (all) => [...all, process.launch])
      yield* Queue.offer(launchQueue, process.launch)
      const stopPermit = yield* Effect.makeSemaphore(1)
      yield* Effect.addFinalizer(() => stopPermit.withPermits(1)(stop(process, stopTimeoutMs)))
      return {
        pid,
        exit: Deferred.await(process.exited),
        recentLines: Ref.get(process.lines),
        stderrLines: Ref.get(process.stderr),
        stop: (timeoutMs) => stopPermit.withPermits(1)(stop(process, timeoutMs))
      } satisfies ChildHandle
    })

  const run: ProcessLauncherShape["run"] = (spec, stdin, limits) =>
    Effect.gen(function*() {
      const call: SimulatedRun = { spec, stdin, limits }
      yield* Ref.update(runCalls, (all) => [...all, call])
      const script = yield* Ref.get(runScript)
      const result = yield* script(call).pipe(
        Effect.timeoutFail({
          duration: limits.timeoutMs,
          onTimeout: () =>
            new LaunchError({
              name: spec.name,
              reason: "Timeout",
              message: `run of "${spec.name}" (simulated) did not finish within ${limits.timeoutMs} ms`
            })
        })
      )
      if (result.stdout.byteLength > limits.maxStdoutBytes) {
        return yield* new LaunchError({
          name: spec.name,
          reason: "OutputTooLarge",
          message: `run of "${spec.name}" (simulated) wrote more than ${limits.maxStdoutBytes} bytes to stdout`
        })
      }
      return result
    })

  const control: SimulatedProcesses = {
    launches: Ref.get(launched),
    nextLaunch: Queue.take(launchQueue),
    running: Effect.gen(function*() {
      const alive: Array<number> = []
      for (const [pid, process] of yield* Ref.get(processes)) {
        if (!(yield* Deferred.isDone(process.exited))) alive.push(pid)
      }
      return alive
    }),
    crash: (pid, code) => withProcess(pid, (process) => Deferred.succeed(process.exited, { code, signal: null })),
    ignoreTerm: (pid) => withProcess(pid, (process) => Ref.set(process.ignoresTerm, true)),
    emit: (pid, line, stream = "stdout") =>
      withProcess(pid, (process) =>
        Effect.zipRight(
          Ref.update(process.lines, (lines) => keepLast(lines, line, process.launch.spec.recentLines ?? 50)),
          stream === "stderr" ? Ref.update(process.stderr, (lines) => keepLast(lines, line, 5)) : Effect.void
        )),
    scriptLaunch: (script) => Ref.set(launchScript, script),
    scriptRun: (script) => Ref.set(runScript, script),
    runs: Ref.get(runCalls)
  }

  // Simulated children are contained as well as the best real ones, and never switch users.
  const shape = { isolation: "pid-namespace" as const, switchesUser: () => false, ownDirPath: (cwd: string) => cwd, launch, run }
  return { layer: Layer.succeed(ProcessLauncher, shape), control }
})
