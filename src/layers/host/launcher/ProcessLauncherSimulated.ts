/**
 * ProcessLauncherSimulated: a deterministic process launcher for tests in virtual time (`TestClock`, or
 * the simulation's clock). No real process starts: a test sees each launch and scripts how each process
 * behaves (`ProcessPlan`: a slow spawn, an exit at a given time, TERM ignored, children of its own), makes
 * a process crash, ignore TERM or spawn a child at any moment, and scripts launch failures and `run`
 * results. A TERM-ignoring process is KILLed after `timeoutMs` on the Clock. Children are contained as in
 * a PID namespace: they die with their process.
 */
import { Clock, Deferred, Effect, Fiber, Layer, Option, Queue, Ref } from "effect"
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

/** The first fake pid; the n-th process (from 0, children included) gets `firstSimulatedPid + n`. */
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

/** How one launched process behaves, decided when it is launched (every field optional: a well-behaved process). */
export interface ProcessPlan {
  /** The spawn takes this long (on the Clock) before the process exists. */
  readonly startDelayMs?: number
  /** The process exits on its own this long after it started, with `exit`. */
  readonly exitAfter?: { readonly afterMs: number; readonly exit: ExitInfo }
  /** It ignores TERM: a stop waits its full grace, then KILLs it. */
  readonly ignoresTerm?: boolean
  /** It starts this many children of its own as soon as it runs. */
  readonly children?: number
}

/** One simulated process as the table shows it: a launched one (`parent` null) or a child of one. */
export interface SimulatedProcessEntry {
  readonly pid: number
  /** The launched process this one belongs to (its own pid for a launched one). */
  readonly leader: number
  readonly parent: number | null
  /** The launch's name (a component id, a broker backend). */
  readonly name: string
  readonly alive: boolean
  /** When it started, on the Clock. */
  readonly startedAt: number
}

/** Decides a launch: succeed to start a simulated process, fail to refuse it (as a spawn error would). */
export type LaunchScript = (spec: LaunchSpec) => Effect.Effect<void, LaunchError>

/** Decides how a launched process behaves. */
export type ProcessScript = (spec: LaunchSpec) => ProcessPlan

/** Produces a `run`'s result; it may sleep (on the Clock) to simulate a slow command. */
export type RunScript = (run: SimulatedRun) => Effect.Effect<RunResult, LaunchError>

/** The test's remote control over the simulated processes. */
export interface SimulatedProcesses {
  /** Every accepted launch so far, oldest first. */
  readonly launches: Effect.Effect<ReadonlyArray<SimulatedLaunch>>
  /** Waits for the next accepted launch (each launch is delivered once). */
  readonly nextLaunch: Effect.Effect<SimulatedLaunch>
  /** Pids of simulated processes (children included) that have not exited. */
  readonly running: Effect.Effect<ReadonlyArray<number>>
  /** Every simulated process so far, oldest first, alive or not. */
  readonly table: Effect.Effect<ReadonlyArray<SimulatedProcessEntry>>
  /** The launch of a launched process, if `pid` is one. */
  readonly launchOf: (pid: number) => Effect.Effect<Option.Option<SimulatedLaunch>>
  /** Completes when `pid` has exited; an unknown pid counts as exited (signal `ESRCH`). */
  readonly exitOf: (pid: number) => Effect.Effect<ExitInfo>
  /** Makes `pid` exit with `code` now (no effect if it already exited or is unknown); its children die with it. */
  readonly crash: (pid: number, code: number) => Effect.Effect<void>
  /** Makes `pid` ignore TERM: a stop then waits its full `timeoutMs` and KILLs it. */
  readonly ignoreTerm: (pid: number) => Effect.Effect<void>
  /** Makes the live process `pid` start a child; the child's pid, or none when `pid` is not alive. */
  readonly spawnChild: (pid: number) => Effect.Effect<Option.Option<number>>
  /** Appends `line` to `pid`'s recent output (and to its stderr lines when `stream` is `stderr`). */
  readonly emit: (pid: number, line: string, stream?: "stdout" | "stderr") => Effect.Effect<void>
  /** Replaces how launches are decided (default: every launch starts). */
  readonly scriptLaunch: (script: LaunchScript) => Effect.Effect<void>
  /** Replaces how launched processes behave (default: start at once, run until stopped, honour TERM). */
  readonly scriptProcess: (script: ProcessScript) => Effect.Effect<void>
  /** Replaces how `run` answers (default: exit 0, empty stdout). */
  readonly scriptRun: (script: RunScript) => Effect.Effect<void>
  /** Every `run` call so far, oldest first. */
  readonly runs: Effect.Effect<ReadonlyArray<SimulatedRun>>
}

interface SimulatedProcess {
  readonly entry: Omit<SimulatedProcessEntry, "alive">
  /** Set for a launched process; a child has none. */
  readonly launch: SimulatedLaunch | null
  readonly exited: Deferred.Deferred<ExitInfo>
  readonly ignoresTerm: Ref.Ref<boolean>
  readonly children: Ref.Ref<ReadonlyArray<SimulatedProcess>>
  readonly lines: Ref.Ref<ReadonlyArray<string>>
  readonly stderr: Ref.Ref<ReadonlyArray<string>>
}

/** Appends `line`, keeping the last `limit`. */
const keepLast = (lines: ReadonlyArray<string>, line: string, limit: number) => {
  const next = [...lines, line]
  return next.length > limit ? next.slice(next.length - limit) : next
}

const emptyOutput = new Uint8Array(0)

const killed: ExitInfo = { code: null, signal: "SIGKILL" }

/**
 * Waits for `exited` at most `ms`. The race runs interruptible (its loser must be interruptible, or it
 * waits for it), on a fiber of its own, not a child: an interruption of the caller mid-wait (a stop in
 * the finalizer of a fiber that is interrupted meanwhile) reaches a fiber's children at once, even in
 * an uninterruptible region, and would end the grace early and skip the KILL.
 */
const graceWait = (exited: Deferred.Deferred<ExitInfo>, ms: number): Effect.Effect<Option.Option<ExitInfo>> =>
  Effect.flatMap(
    Effect.forkDaemon(Effect.interruptible(Effect.raceFirst(Effect.map(Deferred.await(exited), Option.some), Effect.as(Effect.sleep(ms), Option.none())))),
    Fiber.join
  )

/** Ends `process` with `exit` (unless it already ended) and, as a PID namespace does, every process it started. */
const exitProcess = (process: SimulatedProcess, exit: ExitInfo): Effect.Effect<void> =>
  Effect.flatMap(Deferred.succeed(process.exited, exit), (ended) =>
    ended
      ? Effect.flatMap(Ref.get(process.children), (children) => Effect.forEach(children, (child) => exitProcess(child, killed), { discard: true }))
      : Effect.void)

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
  const processScript = yield* Ref.make<ProcessScript>(() => ({}))
  const runScript = yield* Ref.make<RunScript>(() =>
    Effect.succeed({ exit: { code: 0, signal: null }, stdout: emptyOutput, stderrTail: "" })
  )

  const find = (pid: number) => Effect.map(Ref.get(processes), (map) => Option.fromNullable(map.get(pid)))
  const withProcess = (pid: number, f: (process: SimulatedProcess) => Effect.Effect<unknown>) =>
    Effect.flatMap(find(pid), Option.match({ onNone: () => Effect.void, onSome: (process) => Effect.asVoid(f(process)) }))

  /** A new process record (not yet in the table). */
  const makeProcess = (name: string, parent: SimulatedProcess | null, launch: Omit<SimulatedLaunch, "pid"> | null) =>
    Effect.gen(function*() {
      const pid = yield* Ref.getAndUpdate(nextPid, (n) => n + 1)
      const process: SimulatedProcess = {
        entry: { pid, leader: parent?.entry.leader ?? pid, parent: parent?.entry.pid ?? null, name, startedAt: yield* Clock.currentTimeMillis },
        launch: launch === null ? null : { ...launch, pid },
        exited: yield* Deferred.make<ExitInfo>(),
        ignoresTerm: yield* Ref.make(false),
        children: yield* Ref.make<ReadonlyArray<SimulatedProcess>>([]),
        lines: yield* Ref.make<ReadonlyArray<string>>([]),
        stderr: yield* Ref.make<ReadonlyArray<string>>([])
      }
      yield* Ref.update(processes, (map) => new Map(map).set(pid, process))
      return process
    })

  const spawnChildOf = (parent: SimulatedProcess): Effect.Effect<Option.Option<number>> =>
    Effect.gen(function*() {
      if (yield* Deferred.isDone(parent.exited)) return Option.none()
      const child = yield* makeProcess(parent.entry.name, parent, null)
      yield* Ref.update(parent.children, (all) => [...all, child])
      return Option.some(child.entry.pid)
    })

  // Uninterruptible, as a real stop must be: begun, it ends with the process gone (bounded by `timeoutMs`).
  const stop = (process: SimulatedProcess, timeoutMs: number): Effect.Effect<StopOutcome> =>
    Effect.uninterruptible(Effect.gen(function*() {
      const { exited } = process
      if (yield* Deferred.isDone(exited)) {
        return { how: "already_exited", exit: yield* Deferred.await(exited), survivors: [] } satisfies StopOutcome
      }
      if (!(yield* Ref.get(process.ignoresTerm))) {
        yield* exitProcess(process, { code: null, signal: "SIGTERM" })
      }
      const before = yield* graceWait(exited, timeoutMs)
      if (Option.isSome(before)) return { how: "graceful", exit: before.value, survivors: [] } satisfies StopOutcome
      yield* exitProcess(process, killed)
      return { how: "killed", exit: yield* Deferred.await(exited), survivors: [] } satisfies StopOutcome
    }))

  const launch: ProcessLauncherShape["launch"] = (spec, stopTimeoutMs) =>
    Effect.gen(function*() {
      yield* Effect.flatMap(Ref.get(launchScript), (script) => script(spec))
      const plan = (yield* Ref.get(processScript))(spec)
      // A slow spawn: nothing exists until it is done, so an interrupted launch leaves nothing behind.
      if (plan.startDelayMs !== undefined && plan.startDelayMs > 0) yield* Effect.sleep(plan.startDelayMs)
      const process = yield* makeProcess(spec.name, null, { spec, stopTimeoutMs })
      const accepted = process.launch ?? { pid: process.entry.pid, spec, stopTimeoutMs }
      yield* Ref.set(process.ignoresTerm, plan.ignoresTerm ?? false)
      yield* Ref.update(launched, (all) => [...all, accepted])
      yield* Queue.offer(launchQueue, accepted)
      const stopPermit = yield* Effect.makeSemaphore(1)
      yield* Effect.addFinalizer(() => stopPermit.withPermits(1)(stop(process, stopTimeoutMs)))
      for (let i = 0; i < (plan.children ?? 0); i++) yield* spawnChildOf(process)
      const { exitAfter } = plan
      // Forked after the stop finalizer was added, so the scope's end interrupts it before the stop.
      if (exitAfter !== undefined) yield* Effect.forkScoped(Effect.zipRight(Effect.sleep(exitAfter.afterMs), exitProcess(process, exitAfter.exit)))
      return {
        pid: accepted.pid,
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
    table: Effect.flatMap(Ref.get(processes), (map) =>
      Effect.forEach([...map.values()], (process) =>
        Effect.map(Deferred.isDone(process.exited), (done): SimulatedProcessEntry => ({ ...process.entry, alive: !done })))),
    launchOf: (pid) => Effect.map(find(pid), Option.flatMap((process) => Option.fromNullable(process.launch))),
    exitOf: (pid) =>
      Effect.flatMap(find(pid), Option.match({
        onNone: () => Effect.succeed<ExitInfo>({ code: null, signal: "ESRCH" }),
        onSome: (process) => Deferred.await(process.exited)
      })),
    crash: (pid, code) => withProcess(pid, (process) => exitProcess(process, { code, signal: null })),
    ignoreTerm: (pid) => withProcess(pid, (process) => Ref.set(process.ignoresTerm, true)),
    spawnChild: (pid) => Effect.flatMap(find(pid), Option.match({ onNone: () => Effect.succeed(Option.none()), onSome: spawnChildOf })),
    emit: (pid, line, stream = "stdout") =>
      withProcess(pid, (process) =>
        Effect.zipRight(
          Ref.update(process.lines, (lines) => keepLast(lines, line, process.launch?.spec.recentLines ?? 50)),
          stream === "stderr" ? Ref.update(process.stderr, (lines) => keepLast(lines, line, 5)) : Effect.void
        )),
    scriptLaunch: (script) => Ref.set(launchScript, script),
    scriptProcess: (script) => Ref.set(processScript, script),
    scriptRun: (script) => Ref.set(runScript, script),
    runs: Ref.get(runCalls)
  }

  // Simulated children are contained as well as the best real ones, and never switch users.
  const shape = { isolation: "pid-namespace" as const, switchesUser: () => false, ownDirPath: (cwd: string) => cwd, launch, run }
  return { layer: Layer.succeed(ProcessLauncher, shape), control }
})
