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
import { isSignalable, processStartTicks } from "../system/ProcStat.js"

/** The host's pid as seen now: still the host, exited, or reused by another process. */
export type HostPidState = "alive" | "exited" | "reused"

const decodeLock = Schema.decodeUnknownEither(HostLockRecord)

/** What `pid` (from `control.json`) is now, judged with the lock file at `lockFile` when it names the same pid. */
export const hostPidState = (pid: number, lockFile: string): Effect.Effect<HostPidState> =>
  Effect.gen(function*() {
    if (pid <= 1 || !isSignalable(pid)) return "exited"
    const text = yield* Effect.promise(() => Fs.readFile(lockFile, "utf8").catch(() => ""))
    const lock = decodeLock(text)
    // No lock, another pid's lock or one written without /proc: the pid alone must do.
    if (Either.isLeft(lock) || lock.right.pid !== pid || lock.right.start_ticks === "") return "alive"
    const now = processStartTicks(pid)
    return now === undefined || now === lock.right.start_ticks ? "alive" : "reused"
  })
