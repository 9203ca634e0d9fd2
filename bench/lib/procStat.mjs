// /proc readings the bench drivers take (Linux only): a process's CPU time and RSS, and each CPU's
// tick counters, from which they tell their own load from other processes' on a shared machine.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"

let ticksPerSecond

/** USER_HZ, the unit of /proc's tick counters (`getconf CLK_TCK`, read once; 100 if that fails). */
export const clockTicks = () =>
  (ticksPerSecond ??= Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100)

/** utime + stime of `pid` in clock ticks, or `whenGone` when its /proc entry cannot be read. */
export const processCpuTicks = (pid, whenGone = Number.NaN) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return whenGone
  }
}

/** VmRSS of `pid` in bytes, or NaN. */
export const rssBytes = (pid) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? Number.NaN : Number(m[1]) * 1024
  } catch {
    return Number.NaN
  }
}

/** One CPU's tick counters from /proc/stat (user, nice, system, idle, iowait, irq, softirq, steal). */
export const cpuTickCounters = (cpu) => {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n").find((l) => l.startsWith(`cpu${cpu} `))
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number)
  return { user, nice, system, idle, iowait, irq, softirq, steal }
}

/** Busy ticks of all CPUs together (user + nice + system) from /proc/stat's first line. */
export const busyTicks = () => {
  const [user, nice, system] = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 4).map(Number)
  return user + nice + system
}

/** Busy and total ticks of each CPU (keyed "0", "1", …) from /proc/stat; idle and iowait are not busy. */
export const cpuStat = () => {
  const out = {}
  for (const line of fs.readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+) (.*)$/.exec(line)
    if (m === null) continue
    const v = m[2].trim().split(/\s+/).map(Number)
    const idle = v[3] + (v[4] ?? 0)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
    out[m[1]] = { busy: total - idle, total }
  }
  return out
}

/**
 * Share of CPU 0 and CPU 1 used by other processes between two `cpuStat()` samples: busy ticks minus
 * `ours0` / `ours1` (the ticks the bench's own processes used there), as a fraction of each CPU.
 */
export const otherLoad = (before, after, ours0, ours1) => {
  const frac = (id, ours) => {
    const b = before[id]
    const a = after[id]
    if (a === undefined || b === undefined) return 0
    const total = a.total - b.total
    return total <= 0 ? 0 : Math.max(0, (a.busy - b.busy - ours) / total)
  }
  return { cpu0: frac("0", ours0), cpu1: frac("1", ours1) }
}
