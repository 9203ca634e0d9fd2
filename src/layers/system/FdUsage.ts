/** Open file descriptors of this process and their soft limit, read from /proc (Linux). */
import * as Fs from "node:fs"
import { Effect } from "effect"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** Open descriptors and the soft `RLIMIT_NOFILE` (`Infinity` when unknown or unlimited). */
export interface FdCounts {
  readonly openFds: number
  readonly softLimit: number
}

/** Parses the soft "Max open files" value of /proc/self/limits; `unlimited` (or no such line) is null. */
export const parseFdSoftLimit = (limits: string): number | null => {
  const match = /^Max open files\s+(\d+)\s/m.exec(limits)
  return match?.[1] === undefined ? null : Number(match[1])
}

// A limit of 0 cannot be real (this process holds descriptors): treated as unknown, like `unlimited`.
const softLimitOf = (limits: string): number => {
  const value = parseFdSoftLimit(limits)
  return value !== null && value > 0 ? value : Number.POSITIVE_INFINITY
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
