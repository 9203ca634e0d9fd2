/**
 * A child's process group: signal it, list its live members from `/proc`, and stop it TERM → grace →
 * KILL, where every wait has a bound, so a stop in a scope finalizer can never hang. A crash restart
 * waits for the stop of the dead group, so the common cases are cheap: a group already empty costs one
 * `kill(2)`, one holding only zombies one `/proc` scan, and waits poll at 1, 2, 4, 8 ms before every 10 ms.
 */
import * as Fs from "node:fs"
import { Clock, Deferred, Effect, Option } from "effect"
import type { ExitInfo, StopOutcome } from "../../../services/host/ProcessLauncher.js"
import { unlessUrgent } from "../../../services/system/ShutdownUrgency.js"
import { procStatFields } from "../../system/ProcStat.js"

/** After KILL, how long a stop waits for the group to empty before reporting survivors. */
export const killWaitMs = 2_000

/** Poll intervals: short at first (a dying process is usually gone within a few ms), then every 10 ms. */
const pollStepsMs: ReadonlyArray<number> = [1, 2, 4, 8]
const pollMs = 10
const pollDelay = (attempt: number): number => pollStepsMs[attempt] ?? pollMs

/** A started child leading its own group: its pid (= the group id) and its exit, once it has exited. */
export interface GroupLeader {
  readonly pid: number
  readonly exited: Deferred.Deferred<ExitInfo>
  /** The leader is `unshare`, whose child is the init of a PID namespace (see `PidIsolation`). */
  readonly namespaced: boolean
}

/** Sends `signal` to the whole group led by `pgid`; false when the group is already empty. */
const signalGroup = (pgid: number, signal: NodeJS.Signals | 0): boolean => {
  // kill(-0) would signal the host's own group and kill(-1) every process it may signal: never.
  if (!Number.isInteger(pgid) || pgid <= 1) return false
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
    // state ppid pgrp …
    const fields = procStatFields(entry)
    if (fields === undefined) continue
    const state = fields[0]
    if (Number(fields[2]) === pgid && state !== "Z" && state !== "X") members.push(Number(entry))
  }
  return members
}

/**
 * Reads `probe` until `done` holds of it or `ms` pass (see `pollDelay`) and returns the last reading; only
 * sleeps, so it is bounded in a finalizer too.
 */
const pollFor = <A>(probe: Effect.Effect<A>, done: (value: A) => boolean, ms: number): Effect.Effect<A> =>
  Effect.flatMap(Clock.currentTimeMillis, (start) => {
    const loop = (attempt: number): Effect.Effect<A> =>
      Effect.flatMap(probe, (value) =>
        done(value)
          ? Effect.succeed(value)
          : Effect.flatMap(Clock.currentTimeMillis, (now) =>
            now - start >= ms ? Effect.succeed(value) : Effect.zipRight(Effect.sleep(pollDelay(attempt)), loop(attempt + 1))))
    return loop(0)
  })

/** Polls `done` until it holds or `ms` pass; true when it held. */
const pollUntil = (done: Effect.Effect<boolean>, ms: number): Effect.Effect<boolean> => pollFor(done, (ok) => ok, ms)

/** Waits for `deferred` at most `ms`; interruptible inside, so the bound holds in a finalizer too. */
export const awaitWithin = <A>(deferred: Deferred.Deferred<A>, ms: number): Effect.Effect<Option.Option<A>> =>
  Effect.timeoutOption(Effect.interruptible(Deferred.await(deferred)), ms)

const groupEmpty = (pgid: number) => Effect.sync(() => groupMembers(pgid).length === 0)

const readOr = (path: string, fallback: string): string => {
  try {
    return Fs.readFileSync(path, "utf8")
  } catch {
    return fallback
  }
}

/** The children of `pid`, from `/proc/<pid>/task/<pid>/children`. */
const childrenOf = (pid: number): ReadonlyArray<string> =>
  readOr(`/proc/${pid}/task/${pid}/children`, "").split(" ").filter((entry) => entry !== "")

/**
 * Whether a TERM to the group led by `unshare` (`pid`) reaches the command: the namespace's init has
 * forked it and it has exec'd (its argv is no longer the init's). Before that the kernel drops a TERM to
 * the init (a namespace's PID 1) and the forked shell would catch and lose it. True too once the leader
 * or the init is gone (nothing left to wait for).
 */
const commandRuns = (pid: number): Effect.Effect<boolean> =>
  Effect.sync(() => {
    const init = childrenOf(pid)[0]
    if (init === undefined) return !Fs.existsSync(`/proc/${pid}`)
    const initArgv = readOr(`/proc/${init}/cmdline`, "")
    if (initArgv === "") return true
    return childrenOf(Number(init)).some((child) => {
      const argv = readOr(`/proc/${child}/cmdline`, initArgv)
      return argv !== initArgv && argv !== ""
    })
  })

/**
 * KILLs what is left of the group and waits (bounded) until it is empty; returns the survivors. A group
 * that `kill(2)` finds empty is not scanned; otherwise each poll scans `/proc` once, and the last scan is
 * the answer (zombies not yet reaped by their new parent keep `kill(2)` succeeding, but count as gone).
 */
export const killGroup = (pgid: number): Effect.Effect<ReadonlyArray<number>> =>
  Effect.suspend(() => {
    if (!signalGroup(pgid, "SIGKILL")) return Effect.succeed([])
    return pollFor(Effect.sync(() => groupMembers(pgid)), (members) => members.length === 0, killWaitMs)
  })

const unknownExit: ExitInfo = { code: null, signal: null }

/**
 * Leaders whose stop ended with the leader exited and nothing of its group left, with their exit: a later
 * stop of the same child (the run's finalizer stops it, then the launcher's scope does) answers
 * `already_exited` at once, without scanning `/proc` again or signalling a group id the kernel may since
 * have given to someone else.
 */
const emptiedGroups = new WeakMap<GroupLeader, ExitInfo>()

/** TERM → `timeoutMs` → KILL for the group led by `leader`; see `ChildHandle.stop`. */
export const stopGroup = (leader: GroupLeader, timeoutMs: number): Effect.Effect<StopOutcome> =>
  Effect.suspend(() => {
    const exit = emptiedGroups.get(leader)
    if (exit !== undefined) return Effect.succeed({ how: "already_exited", exit, survivors: [] } satisfies StopOutcome)
    return Effect.tap(stopOnce(leader, timeoutMs), (outcome) =>
      Effect.sync(() => {
        if (outcome.survivors.length === 0 && outcome.exit !== unknownExit) emptiedGroups.set(leader, outcome.exit)
      }))
  })

const stopOnce = (leader: GroupLeader, timeoutMs: number): Effect.Effect<StopOutcome> =>
  Effect.gen(function*() {
    const { exited, pid } = leader
    const exitOf = Effect.map(Deferred.poll(exited), Option.isSome)
    if (yield* exitOf) {
      const survivors = yield* killGroup(pid)
      return { how: "already_exited", exit: yield* Deferred.await(exited), survivors } satisfies StopOutcome
    }
    // Right after a launch the command may not run yet: a TERM then would be lost. Wait (within the grace).
    // A second stop signal (`ShutdownUrgency`) cuts both graces: the group is KILLed at once.
    const running = leader.namespaced
      ? (yield* unlessUrgent(pollUntil(Effect.zipWith(exitOf, commandRuns(pid), (leaderExited, runs) => leaderExited || runs), timeoutMs))) === true
      : true
    if (running) signalGroup(pid, "SIGTERM")
    const gone = Effect.flatMap(exitOf, (leaderExited) => (leaderExited ? groupEmpty(pid) : Effect.succeed(false)))
    if ((yield* unlessUrgent(pollUntil(gone, timeoutMs))) === true) {
      return { how: "graceful", exit: yield* Deferred.await(exited), survivors: [] } satisfies StopOutcome
    }
    const survivors = yield* killGroup(pid)
    const exit = yield* awaitWithin(exited, survivors.includes(pid) ? 0 : killWaitMs)
    return { how: "killed", exit: Option.getOrElse(exit, () => unknownExit), survivors } satisfies StopOutcome
  })
