// Process-table readings for the fault campaign and the soak (Linux /proc only): a process's
// descendants, its identity (pid + start time, so a reused pid is not mistaken for it), the members of
// a session or process group, and its open descriptors. Read-only: nothing here signals anything.
import * as fs from "node:fs"

/** The fields of /proc/<pid>/stat after the command name (field 3 onwards), or undefined when gone. */
const statFields = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** `{ pid, start }` (start: clock ticks since boot, field 22), or undefined when the pid is gone. */
export const identity = (pid) => {
  const f = statFields(pid)
  return f === undefined ? undefined : { pid, start: f[19], ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) }
}

/** Whether the process named by `id` (from `identity`) still runs (same pid, same start time, not a zombie). */
export const stillRuns = (id) => {
  const f = statFields(id.pid)
  return f !== undefined && f[19] === id.start && f[0] !== "Z"
}

/** The pids below `pid` (children of every thread, recursively; at most `max`), from /proc. */
export const descendants = (pid, max = 512) => {
  const found = []
  const queue = [pid]
  while (queue.length > 0 && found.length < max) {
    const parent = queue.shift()
    let tids = []
    try {
      tids = fs.readdirSync(`/proc/${parent}/task`)
    } catch {
      continue
    }
    for (const tid of tids) {
      try {
        for (const child of fs.readFileSync(`/proc/${parent}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)) {
          found.push(child)
          queue.push(child)
        }
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return found
}

/** Every live process whose session id is in `sids` or whose process group id is in `pgids`. */
export const membersOf = ({ sids, pgids }) => {
  const out = []
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    const id = identity(Number(name))
    if (id === undefined) continue
    const f = statFields(id.pid)
    if (f === undefined || f[0] === "Z") continue
    if (sids.has(id.sid) || pgids.has(id.pgid)) out.push(id)
  }
  return out
}

/** The command line of `pid` (spaces for NULs), or "" when gone; for reports. */
export const commandLine = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim()
  } catch {
    return ""
  }
}

/** How many descriptors `pid` has open, or NaN when gone. */
export const openFds = (pid) => {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return Number.NaN
  }
}

/** `pid`'s soft and hard RLIMIT_NOFILE from /proc/<pid>/limits ("unlimited" as Infinity), or undefined. */
export const nofileLimit = (pid) => {
  try {
    const line = fs.readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    const [soft, hard] = line.trim().split(/\s+/).slice(3, 5).map((v) => (v === "unlimited" ? Infinity : Number(v)))
    return { soft, hard }
  } catch {
    return undefined
  }
}

/**
 * Remembers every process seen below a root pid (by identity), with the session and process group
 * of each, so that after the root is gone one can ask which of them still run.
 */
export const processCensus = (rootPid) => {
  const seen = new Map()
  const root = identity(rootPid)
  const sids = new Set(root === undefined ? [] : [root.sid])
  const pgids = new Set(root === undefined ? [] : [root.pgid])
  return {
    /** Records the current descendants of the root; returns how many there are now. */
    sample: () => {
      const pids = descendants(rootPid)
      for (const pid of pids) {
        const id = identity(pid)
        if (id === undefined) continue
        seen.set(`${id.pid}:${id.start}`, id)
        // A module's own session and group (the launcher makes one per child): scanned at the end.
        if (id.sid !== 0) sids.add(id.sid)
        if (id.pgid !== 0) pgids.add(id.pgid)
      }
      return pids.length
    },
    /** How many distinct processes were seen below the root. */
    seenCount: () => seen.size,
    /**
     * Seen processes that still run, plus live members of a session or group seen (excluding
     * `exclude`, e.g. the campaign's own pid), each with its command line.
     */
    leftBehind: (exclude = new Set()) => {
      const left = new Map()
      for (const id of seen.values()) if (stillRuns(id)) left.set(id.pid, id)
      for (const id of membersOf({ sids, pgids })) if (!exclude.has(id.pid)) left.set(id.pid, id)
      return [...left.values()].map((id) => ({ pid: id.pid, sid: id.sid, pgid: id.pgid, cmd: commandLine(id.pid).slice(0, 200) }))
    }
  }
}
