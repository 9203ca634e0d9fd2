// The child processes a bench starts: tracked by pid, stopped by pid (SIGTERM, then SIGKILL after a
// grace), and all SIGKILLed if the bench ends early. Never by name: other sessions share this machine.
import { setTimeout as sleep } from "node:timers/promises"

/** pid -> { name, proc, exited } of every child still running. */
const children = new Map()

/** Tracks `proc` until it exits; the returned promise resolves `{ code, signal }` when it does. */
export const track = (proc, name) => {
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })))
  children.set(proc.pid, { name, proc, exited })
  exited.then(() => children.delete(proc.pid))
  return exited
}

/**
 * Stops a tracked child by its pid: SIGTERM, then SIGKILL after `graceMs` and at most 2 s more to
 * see it exit. Resolves `{ ms, how }`: "already exited", "SIGTERM" or "SIGKILL after N s".
 */
export const stopChild = async (proc, graceMs = 5_000) => {
  const entry = children.get(proc.pid)
  if (entry === undefined || proc.exitCode !== null || proc.signalCode !== null) return { ms: 0, how: "already exited" }
  const start = performance.now()
  const elapsed = () => Math.round(performance.now() - start)
  try {
    process.kill(proc.pid, "SIGTERM")
  } catch {}
  const graceful = await Promise.race([entry.exited.then(() => true), sleep(graceMs).then(() => false)])
  if (graceful) return { ms: elapsed(), how: "SIGTERM" }
  try {
    process.kill(proc.pid, "SIGKILL")
  } catch {}
  await Promise.race([entry.exited, sleep(2_000)])
  return { ms: elapsed(), how: `SIGKILL after ${graceMs / 1000} s` }
}

/** SIGKILLs every tracked child at once (the bench is ending early). */
export const killAllNow = () => {
  for (const pid of children.keys()) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {}
  }
}

/**
 * When the bench exits, SIGKILLs what it started and runs `cleanup`; on one of `signals` it also
 * writes `message(signal)` to stderr and exits 130.
 */
export const stopChildrenOnExit = ({ signals, message, cleanup = () => {} }) => {
  process.on("exit", () => {
    killAllNow()
    cleanup()
  })
  for (const signal of signals) {
    process.once(signal, () => {
      process.stderr.write(message(signal))
      killAllNow()
      cleanup()
      process.exit(130)
    })
  }
}

/**
 * Bounds the whole run: after `ms`, writes `message` to stderr, SIGKILLs every child, runs `cleanup`
 * and exits `exitCode`. `unref`: the timer alone does not keep the process alive. Returns the timer.
 */
export const armWatchdog = ({ ms, message, exitCode, cleanup = () => {}, unref = false }) => {
  const timer = setTimeout(() => {
    process.stderr.write(message)
    killAllNow()
    cleanup()
    process.exit(exitCode)
  }, ms)
  if (unref) timer.unref()
  return timer
}

/**
 * Reads a child's `stream` line by line until `pick(line)` returns a value, and resolves with it
 * (undefined: read on; a throw rejects with it). Rejects with `exitError(code, signal)` if `exited`
 * (from `track`) settles first, or with `timeoutError()` after `timeoutMs`. Kills nothing itself.
 */
export const awaitLine = (stream, { pick, exited, timeoutMs, timeoutError, exitError }) =>
  new Promise((resolve, reject) => {
    let buffer = ""
    let settled = false
    const settle = (outcome, value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      // The stream keeps flowing (and so is drained) after this listener goes.
      stream.off("data", onData)
      outcome(value)
    }
    const timer = setTimeout(() => settle(reject, timeoutError()), timeoutMs)
    const onData = (chunk) => {
      buffer += chunk.toString("utf8")
      let nl
      while (!settled && (nl = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        let value
        try {
          value = pick(line)
        } catch (error) {
          settle(reject, error)
          return
        }
        if (value !== undefined) settle(resolve, value)
      }
    }
    stream.on("data", onData)
    exited.then(({ code, signal }) => settle(reject, exitError(code, signal)))
  })
