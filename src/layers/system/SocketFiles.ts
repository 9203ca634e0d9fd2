/** Unix socket files on disk: which one is there (by inode) and removing a stale one left by an earlier run. */
import * as Fs from "node:fs"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** The inode of whatever is at `path` (not followed), or `undefined` when nothing is. */
export const inodeOf = (path: string): number | undefined => {
  try {
    return Fs.lstatSync(path).ino
  } catch {
    return undefined
  }
}

/**
 * Unlinks `path` when it is a socket. Returns what was there: `"absent"`, `"removed"`, or `"not_socket"`
 * (left in place; each caller decides whether that is an error).
 */
export const removeStaleSocket = (path: string): "absent" | "removed" | "not_socket" => {
  let stat: Fs.Stats
  try {
    stat = Fs.lstatSync(path)
  } catch {
    // Missing, or its directory unreadable: nothing this process could remove.
    return "absent"
  }
  if (!stat.isSocket()) return "not_socket"
  try {
    Fs.unlinkSync(path)
  } catch (error) {
    // Gone between the stat and the unlink: as good as removed.
    if (errorCode(error) === "ENOENT") return "absent"
    throw error
  }
  return "removed"
}
