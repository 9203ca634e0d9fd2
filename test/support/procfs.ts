/**
 * The one place tests read /proc: a process's state, group and parent, whether it lives, its argv and
 * environment, its descendants, processes picked by argv, marker sleeps, TCP listeners, and a bounded
 * wait. Pids printed inside a PID namespace are that namespace's, so tests find a child's descendants
 * by marker or by tree, not by a printed pid.
 */
import { randomInt } from "node:crypto"
import * as Fs from "node:fs"
import { Effect } from "effect"

/** The file at `path`, or `fallback` when it is unreadable (a process that exited meanwhile, say). */
const readOr = (path: string, fallback = ""): string => {
  try {
    return Fs.readFileSync(path, "utf8")
  } catch {
    return fallback
  }
}

/** Every pid in /proc at the moment of the call. */
const allPids = (): ReadonlyArray<number> => Fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number)

/** State, parent and process group of `pid` from `/proc/<pid>/stat`, or undefined once it is gone. */
export const procStat = (
  pid: number
): { readonly state: string; readonly ppid: number; readonly pgrp: number } | undefined => {
  const stat = readOr(`/proc/${pid}/stat`)
  if (stat === "") return undefined
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return { state: fields[0] ?? "", ppid: Number(fields[1]), pgrp: Number(fields[2]) }
}

/** Whether `pid` exists and is not a zombie (dead but not yet reaped counts as gone). */
export const isAlive = (pid: number): boolean => {
  const stat = procStat(pid)
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X"
}

/** The parent pid of `pid`, or undefined once it is gone. */
export const parentOf = (pid: number): number | undefined => procStat(pid)?.ppid

/** A process's argv (empty once it is gone). */
export const argvOf = (pid: number): ReadonlyArray<string> => {
  const raw = readOr(`/proc/${pid}/cmdline`)
  return raw === "" ? [] : raw.replace(/\0$/, "").split("\0")
}

/** A process's argv joined with spaces ("" once it is gone). */
export const cmdlineOf = (pid: number): string => argvOf(pid).join(" ").trim()

/** A process's environment as read by this process (empty when unreadable or gone). */
export const environOf = (pid: number): Readonly<Record<string, string>> =>
  Object.fromEntries(
    readOr(`/proc/${pid}/environ`).split("\0").filter((entry) => entry.includes("=")).map((entry) => {
      const at = entry.indexOf("=")
      return [entry.slice(0, at), entry.slice(at + 1)]
    })
  )

/** The direct children of `pid`, from the `children` file of each of its threads (any thread may have forked). */
const childrenOf = (pid: number): ReadonlyArray<number> => {
  let tasks: Array<string> = []
  try {
    tasks = Fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  return tasks.flatMap((task) =>
    readOr(`/proc/${pid}/task/${task}/children`).split(" ").filter((entry) => entry !== "").map(Number)
  )
}

/** Every descendant of `root` (children, their children, …; breadth first), not `root` itself; bounded at 10,000. */
export const descendantsOf = (root: number): ReadonlyArray<number> => {
  const found: Array<number> = []
  const queue = [root]
  while (queue.length > 0 && found.length < 10_000) {
    for (const child of childrenOf(queue.shift() ?? 0)) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

/** Live processes whose argv satisfies `predicate`. */
export const processesWhoseArgv = (predicate: (argv: ReadonlyArray<string>, pid: number) => boolean): ReadonlyArray<number> =>
  allPids().filter((pid) => {
    const argv = argvOf(pid)
    return argv.length > 0 && predicate(argv, pid) && isAlive(pid)
  })

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
  processesWhoseArgv((argv) => (argv[0] ?? "").endsWith("sleep") && argv[1] === marker)

/** The socket inodes among `pid`'s open descriptors. */
const socketInodes = (pid: number): ReadonlySet<string> => {
  const inodes = new Set<string>()
  let fds: Array<string> = []
  try {
    fds = Fs.readdirSync(`/proc/${pid}/fd`)
  } catch {
    return inodes
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(Fs.readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match?.[1] !== undefined) inodes.add(match[1])
    } catch {
      // The descriptor closed meanwhile.
    }
  }
  return inodes
}

/** The listening TCP sockets (v4 and v6) of this network namespace: port and socket inode. */
const tcpListeners = (): ReadonlyArray<{ readonly port: number; readonly inode: string }> =>
  ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((table) =>
    readOr(table).split("\n").slice(1).flatMap((line) => {
      const fields = line.trim().split(/\s+/)
      const local = fields[1]
      const inode = fields[9]
      // State 0A is TCP_LISTEN.
      return fields[3] === "0A" && local !== undefined && inode !== undefined
        ? [{ port: parseInt(local.slice(local.lastIndexOf(":") + 1), 16), inode }]
        : []
    })
  )

/** The TCP ports (v4 and v6) on which anything here listens. */
export const tcpListenPorts = (): ReadonlyArray<number> => tcpListeners().map((listener) => listener.port)

/** The TCP ports (v4 and v6) on which any of `pids` listens. */
export const tcpListenPortsOf = (pids: ReadonlyArray<number>): ReadonlyArray<number> => {
  const inodes = new Set(pids.flatMap((pid) => [...socketInodes(pid)]))
  return tcpListeners().filter((listener) => inodes.has(listener.inode)).map((listener) => listener.port)
}

/** Whether anything here listens on TCP port `port` (IPv4 or IPv6). */
export const somethingListensOn = (port: number): boolean => tcpListenPorts().includes(port)

/** Polls `condition` every 10 ms for at most `ms`; true once it holds, false at the deadline. */
export const waitUntil = (condition: () => boolean, ms: number): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!condition()) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep("10 millis")
    }
    return true
  })

/** Polls `condition` every 10 ms; dies naming `description` when it does not hold within `ms`. */
export const waitFor = (description: string, condition: () => boolean, ms: number): Effect.Effect<void> =>
  Effect.flatMap(
    waitUntil(condition, ms),
    (held) => held ? Effect.void : Effect.die(new Error(`timed out after ${ms} ms waiting for ${description}`))
  )
