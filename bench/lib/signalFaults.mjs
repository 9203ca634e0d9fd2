// SIGKILL and SIGSTOP/SIGCONT of supervised modules, for the fault campaign. Targets are the pids the
// host reports in GET /v1/components (the launcher's sandbox wrapper, which leads the module's PID
// namespace) and, for SIGSTOP, every process below it: stopping only the wrapper would leave the
// module itself running. Only descendants of the host this campaign started are ever signalled.
import { descendants } from "./procTree.mjs"

/** Sends `signal` to `pid` only if it is below `hostPid`; returns whether it was sent. */
const signalBelow = (hostPid, pid, signal) => {
  if (!Number.isInteger(pid) || pid <= 1 || !descendants(hostPid).includes(pid)) return false
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

/** SIGKILLs the reported pid of `component` (a GET /v1/components entry); returns what was done. */
export const killModule = (hostPid, component) =>
  signalBelow(hostPid, component.pid, "SIGKILL") ? `SIGKILL ${component.id} (pid ${component.pid})` : undefined

/**
 * SIGSTOPs the reported pid of `component` and everything below it; resolves after `pauseMs` once
 * each stopped process got SIGCONT (always sent, also when the stop partly failed).
 */
export const pauseModule = async (hostPid, component, pauseMs) => {
  const pids = [component.pid, ...(Number.isInteger(component.pid) ? descendants(component.pid) : [])]
  const stopped = pids.filter((pid) => signalBelow(hostPid, pid, "SIGSTOP"))
  if (stopped.length === 0) return undefined
  await new Promise((r) => setTimeout(r, pauseMs))
  for (const pid of stopped) {
    try {
      process.kill(pid, "SIGCONT")
    } catch {}
  }
  return `SIGSTOP ${component.id} (${stopped.length} processes) for ${pauseMs} ms`
}
