/**
 * The data directory's lock, held for the life of the layer. Taken by hard-linking a complete temp
 * file to `run/host.lock` (atomic, never half-written). A lock whose pid is gone, or now belongs to a
 * different process, is stale: it is moved aside, checked again, and taken over.
 */
import * as Fs from "node:fs"
import { Effect, Either, Layer, Schema } from "effect"
import { HostAlreadyRunning, HostLockError, HostLockRecord } from "../../services/host/HostLock.js"
import { HostPaths } from "../../services/host/HostPaths.js"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { isSignalable, processStartTicks } from "../system/ProcStat.js"

const decodeRecord = Schema.decodeUnknownEither(HostLockRecord)

/** The record in `file`: `live` when its process still runs, `stale` when not, `unreadable` when it cannot be parsed. */
const inspect = (file: string) => {
  const text = Fs.readFileSync(file, "utf8")
  const record = decodeRecord(text)
  if (Either.isLeft(record)) return { _tag: "unreadable", text } as const
  const live = record.right.pid <= 1
    ? false
    : record.right.start_ticks === ""
    ? isSignalable(record.right.pid) // no /proc where it was written: the pid alone must do
    : processStartTicks(record.right.pid) === record.right.start_ticks
  return { _tag: live ? "live" : "stale", text, pid: record.right.pid } as const
}

/** Takes the lock or says who holds it; bounded: three rounds of stale takeover at most. */
const acquire = (dataDir: string, lockFile: string) =>
  Effect.try({
    try: (): { readonly heldBy: number } | { readonly taken: string } | { readonly contended: true } => {
      const ours = JSON.stringify({ pid: process.pid, start_ticks: processStartTicks(process.pid) ?? "", started_at: new Date().toISOString() })
      const temp = `${lockFile}.${process.pid}.tmp`
      Fs.writeFileSync(temp, `${ours}\n`, { mode: 0o600 })
      try {
        for (let round = 0; round < 3; round++) {
          try {
            Fs.linkSync(temp, lockFile)
            return { taken: `${ours}\n` }
          } catch (error) {
            if (errorCode(error) !== "EEXIST") throw error
          }
          const found = inspect(lockFile)
          if (found._tag === "live") return { heldBy: found.pid }
          // A lock no process of ours could have half-written (it is linked whole) that does not parse was
          // not written by a Corral host: leave it for the operator rather than guess.
          if (found._tag === "unreadable") throw new Error(`${lockFile} is not a Corral host lock; remove it if no host runs here`)
          const aside = `${lockFile}.stale.${process.pid}`
          try {
            Fs.renameSync(lockFile, aside)
          } catch (error) {
            if (errorCode(error) === "ENOENT") continue // another starting host moved it first
            throw error
          }
          // Between reading and moving, another host may have taken over: put its live lock back, by
          // link (never over a lock a third host may have taken meanwhile: then both are contending).
          if (Fs.readFileSync(aside, "utf8") !== found.text) {
            try {
              Fs.linkSync(aside, lockFile)
            } catch (error) {
              if (errorCode(error) !== "EEXIST") throw error
            }
            Fs.rmSync(aside, { force: true })
            return { contended: true }
          }
          Fs.rmSync(aside, { force: true })
        }
        return { contended: true }
      } finally {
        Fs.rmSync(temp, { force: true })
      }
    },
    catch: (error) => new HostLockError({ lockFile, message: errorText(error) })
  }).pipe(
    Effect.flatMap((outcome): Effect.Effect<string, HostAlreadyRunning | HostLockError> =>
      "taken" in outcome
        ? Effect.succeed(outcome.taken)
        : "heldBy" in outcome
        ? Effect.fail(new HostAlreadyRunning({ dataDir, pid: outcome.heldBy, lockFile }))
        : Effect.fail(new HostLockError({ lockFile, message: "other hosts kept taking the lock over at the same moment; try again" })))
  )

/** Holds `run/host.lock` while the layer lives; a second host fails with `HostAlreadyRunning` and changes nothing. */
export const HostLockLive: Layer.Layer<never, HostAlreadyRunning | HostLockError, HostPaths> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const paths = yield* HostPaths
    yield* Effect.acquireRelease(acquire(paths.dataDir, paths.hostLock), (taken) =>
      Effect.sync(() => {
        // Only our own lock is removed: an operator may have cleared it and another host taken it.
        try {
          if (Fs.readFileSync(paths.hostLock, "utf8") === taken) Fs.rmSync(paths.hostLock, { force: true })
        } catch {
          // already gone
        }
      }))
  })
)
