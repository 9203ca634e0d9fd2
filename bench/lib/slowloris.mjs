// Slowloris clients against the control server, with Debian's `slowhttptest`: installed with
// apt-get when missing and this process is root (bounded to 3 minutes), otherwise the fault is
// skipped with the reason. The run itself is a tracked child, bounded by its own `-l` and a deadline.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { stopChild, track } from "./children.mjs"

const onPath = (program) =>
  (process.env.PATH ?? "/usr/bin:/bin").split(":").some((dir) => {
    try {
      fs.accessSync(`${dir}/${program}`, fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** `{ ok: true }` when slowhttptest can run (installing it if needed), else `{ ok: false, reason }`. */
export const ensureSlowhttptest = (log) => {
  if (onPath("slowhttptest")) return { ok: true }
  if (process.getuid?.() !== 0) return { ok: false, reason: "slowhttptest is not installed and this is not root (apt-get install slowhttptest)" }
  log("slowhttptest missing: apt-get install -y slowhttptest (at most 180 s)")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  let r = spawnSync("timeout", ["180", "apt-get", "install", "-y", "--no-install-recommends", "slowhttptest"], { encoding: "utf8", env })
  if (r.status !== 0) {
    // Stale package lists are the usual cause; one update, then one more try.
    spawnSync("timeout", ["120", "apt-get", "update"], { encoding: "utf8", env })
    r = spawnSync("timeout", ["180", "apt-get", "install", "-y", "--no-install-recommends", "slowhttptest"], { encoding: "utf8", env })
  }
  return onPath("slowhttptest") ? { ok: true, installed: true } : { ok: false, reason: `apt-get install slowhttptest failed: ${(r.stderr ?? "").trim().slice(-300)}` }
}

/**
 * Runs slowhttptest in slow-headers mode (`-H`) against `url` for `seconds` with `connections`
 * sockets; resolves `{ argv, exit, how, summary }` (summary: its last status lines).
 */
export const runSlowloris = async ({ url, seconds, connections }) => {
  const argv = ["-H", "-c", String(connections), "-r", String(Math.max(50, connections / 4)), "-i", "5", "-s", "8192", "-t", "GET", "-u", url, "-x", "24", "-p", "3", "-l", String(seconds)]
  const proc = spawn("slowhttptest", argv, { stdio: ["ignore", "pipe", "pipe"] })
  const exited = track(proc, "slowhttptest")
  let out = ""
  const keep = (c) => {
    out = (out + c.toString("utf8")).slice(-1_000_000)
  }
  proc.stdout.on("data", keep)
  proc.stderr.on("data", keep)
  const deadline = setTimeout(() => stopChild(proc, 2_000), (seconds + 15) * 1000)
  const { code, signal } = await exited
  clearTimeout(deadline)
  // eslint-disable-next-line no-control-regex
  const plain = out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "")
  const counts = (label) => [...plain.matchAll(new RegExp(`${label}:\\s*(\\d+)`, "g"))].map((m) => Number(m[1]))
  const available = [...plain.matchAll(/service available:\s*(\w+)/g)].map((m) => m[1])
  return {
    argv: ["slowhttptest", ...argv],
    exit: code ?? signal,
    summary: {
      max_connected: Math.max(0, ...counts("connected")),
      closed_at_end: counts("closed").at(-1) ?? null,
      errors_at_end: counts("error").at(-1) ?? null,
      // slowhttptest's own probe: a fresh request every second while the slow sockets are held.
      service_unavailable_seconds: available.filter((v) => v !== "YES").length,
      status_reports: available.length,
      exit_status: /Exit status:\s*(.*)/.exec(plain)?.[1]?.trim() ?? null
    }
  }
}
