/**
 * Whether the pid a data dir's `run/control.json` names is still that host. A SIGKILLed host leaves its
 * run files behind; its pid may since belong to another process, and its port to another listener, that
 * must never be sent the token. `run/host.lock` records the host's process start time (field 22 of
 * `/proc/<pid>/stat`, as the host's own lock does): a process with the same pid but another start time
 * is not the host.
 */
import * as Fs from "node:fs/promises"
import { Effect, Either, Schema } from "effect"
import { HostLockRecord } from "../../services/host/HostLock.js"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** The host's pid as seen now: still the host, exited, or reused by another process. */
export type HostPidState = "alive" | "exited" | "reused"

const signalable = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else; only ESRCH says it is gone.
    return errorCode(error) === "EPERM"
  }
}

/** Field 22 of `/proc/<pid>/stat` (its start time in clock ticks since boot), or undefined without /proc. */
const startTicks = (pid: number): Effect.Effect<string | undefined> =>
  Effect.promise(() =>
    Fs.readFile(`/proc/${pid}/stat`, "utf8").then(
      (stat) => stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
      () => undefined
    )
  )

const decodeLock = Schema.decodeUnknownEither(HostLockRecord)

/** What `pid` (from `control.json`) is now, judged with the lock file at `lockFile` when it names the same pid. */
export const hostPidState = (pid: number, lockFile: string): Effect.Effect<HostPidState> =>
  Effect.gen(function*() {
    if (pid <= 1 || !signalable(pid)) return "exited"
    const text = yield* Effect.promise(() => Fs.readFile(lockFile, "utf8").catch(() => ""))
    const lock = decodeLock(text)
    // No lock, another pid's lock or one written without /proc: the pid alone must do.
    if (Either.isLeft(lock) || lock.right.pid !== pid || lock.right.start_ticks === "") return "alive"
    const now = yield* startTicks(pid)
    return now === undefined || now === lock.right.start_ticks ? "alive" : "reused"
  })
