/**
 * What `/proc/<pid>/stat` and `kill(pid, 0)` say of a process: the one reader of the stat line (its
 * command name may hold spaces and parentheses, so fields are counted after the last `)`).
 */
import * as Fs from "node:fs"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** The fields of `/proc/<pid>/stat` after the command name (state, ppid, pgrp, …), or undefined when unreadable. */
export const procStatFields = (pid: number | string): ReadonlyArray<string> | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks since boot (undefined when gone or without /proc). */
export const processStartTicks = (pid: number): string | undefined => procStatFields(pid)?.[19]

/** Whether a process `pid` exists (EPERM: it does, but is someone else's; only ESRCH says it is gone). */
export const isSignalable = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === "EPERM"
  }
}
