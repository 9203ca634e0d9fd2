/** Open file descriptors of this process and their soft limit, read from /proc (Linux). */
import * as Fs from "node:fs"
import { Effect } from "effect"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** Open descriptors and the soft `RLIMIT_NOFILE` (`Infinity` when unknown or unlimited). */
export interface FdCounts {
  readonly openFds: number
  readonly softLimit: number
}

const softLimitOf = (limits: string): number => {
  const line = limits.split("\n").find((l) => l.startsWith("Max open files"))
  const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0]
  const value = soft === undefined ? Number.NaN : Number(soft)
  return Number.isFinite(value) && value > 0 ? value : Number.POSITIVE_INFINITY
}

/**
 * Reads the counts (never fails): `"exhausted"` when the read itself ran out of descriptors,
 * `"unknown"` where /proc cannot be read.
 */
export const readFdCounts: Effect.Effect<FdCounts | "exhausted" | "unknown"> = Effect.sync(() => {
  try {
    // Synchronous on purpose: two small procfs reads, done once per accepted broker connection.
    const openFds = Fs.readdirSync("/proc/self/fd").length
    return { openFds, softLimit: softLimitOf(Fs.readFileSync("/proc/self/limits", "utf8")) }
  } catch (error) {
    const code = errorCode(error)
    return code === "EMFILE" || code === "ENFILE" ? "exhausted" : "unknown"
  }
})
