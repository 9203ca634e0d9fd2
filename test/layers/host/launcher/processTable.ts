/**
 * The host's view of the process table for launcher tests: a process's state and group from
 * `/proc/<pid>/stat`, and the live processes whose argv carries a marker. Pids printed inside a PID
 * namespace are that namespace's, so tests find a child's descendants by marker, not by a printed pid.
 */
import { randomInt } from "node:crypto"
import * as Fs from "node:fs"
import { Effect } from "effect"

/** State and process group of `pid` from /proc, or undefined once it is gone. */
export const procStat = (pid: number): { readonly state: string; readonly pgrp: number } | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0] ?? "", pgrp: Number(fields[2]) }
  } catch {
    return undefined
  }
}

/** Whether `pid` exists and is not a zombie. */
export const isAlive = (pid: number): boolean => {
  const stat = procStat(pid)
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X"
}

const allPids = (): ReadonlyArray<number> =>
  Fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number)

/** Live processes whose process group is `pgid`. */
export const groupOf = (pgid: number): ReadonlyArray<number> =>
  allPids().filter((pid) => procStat(pid)?.pgrp === pgid && isAlive(pid))

/**
 * A unique `sleep` duration to mark processes: `sleep <marker>` sleeps about five minutes and its argv
 * names it, wherever (and in whichever PID namespace) it runs; find it with `liveSleepers`.
 */
export const sleepMarker = (): string => `300.${randomInt(100_000_000, 999_999_999)}`

/** Live `sleep` processes (host pids) given `marker`; wrappers that merely carry it in their argv do not count. */
export const liveSleepers = (marker: string): ReadonlyArray<number> =>
  allPids().filter((pid) => {
    try {
      const argv = Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
      return (argv[0] ?? "").endsWith("sleep") && argv[1] === marker && isAlive(pid)
    } catch {
      return false
    }
  })

/** Polls `condition` every 10 ms for at most `ms`; true once it holds. */
export const waitUntil = (condition: () => boolean, ms: number): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!condition()) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep("10 millis")
    }
    return true
  })
