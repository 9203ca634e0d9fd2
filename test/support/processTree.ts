/**
 * What /proc says about a process tree: descendants of a pid, their argv and environment, and which of
 * them listen on a TCP port. For tests that check what a module exposes (its token, its ports).
 */
import * as Fs from "node:fs"

const readOr = (path: string, fallback: string): string => {
  try {
    return Fs.readFileSync(path, "utf8")
  } catch {
    return fallback
  }
}

const parentOf = (pid: number): number | undefined => {
  const stat = readOr(`/proc/${pid}/stat`, "")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return fields[1] === undefined ? undefined : Number(fields[1])
}

/** Every live descendant of `root` (children, their children, …), not `root` itself. */
export const descendantsOf = (root: number): ReadonlyArray<number> => {
  const children = new Map<number, Array<number>>()
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const parent = parentOf(Number(entry))
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), Number(entry)])
  }
  const found: Array<number> = []
  const queue = [...(children.get(root) ?? [])]
  while (queue.length > 0 && found.length < 10_000) {
    const pid = queue.shift() ?? 0
    found.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return found
}

/** A process's argv joined with spaces ("" once it is gone). */
export const cmdlineOf = (pid: number): string => readOr(`/proc/${pid}/cmdline`, "").split("\0").join(" ").trim()

/** A process's environment as read by this process (empty when unreadable or gone). */
export const environOf = (pid: number): Readonly<Record<string, string>> =>
  Object.fromEntries(
    readOr(`/proc/${pid}/environ`, "").split("\0").filter((entry) => entry.includes("=")).map((entry) => {
      const at = entry.indexOf("=")
      return [entry.slice(0, at), entry.slice(at + 1)]
    })
  )

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

/** The TCP ports (v4 and v6) on which any of `pids` listens. */
export const tcpListenPortsOf = (pids: ReadonlyArray<number>): ReadonlyArray<number> => {
  const inodes = new Set(pids.flatMap((pid) => [...socketInodes(pid)]))
  const ports: Array<number> = []
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readOr(table, "").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/)
      const local = fields[1]
      if (fields[3] === "0A" && fields[9] !== undefined && inodes.has(fields[9]) && local !== undefined) {
        ports.push(parseInt(local.slice(local.lastIndexOf(":") + 1), 16))
      }
    }
  }
  return ports
}
