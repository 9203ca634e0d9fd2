// The operator's eye on a running host, for the fault campaign and the soak: every `intervalMs` it
// reads GET /v1/components (phases and pids seen, the probe's outcome and time per phase), restarts a
// `failed` component through the control API when asked to (only an operator action leaves
// `failed`), records the host's descendants (processCensus) and samples its descriptors and RSS.
import { setTimeout as sleep } from "node:timers/promises"
import { openFds, processCensus } from "./procTree.mjs"
import { rssBytes } from "./procStat.mjs"

/** Starts watching; `phase()` names the current phase. `stop()` resolves after the last round. */
export const watchHost = ({ control, hostPid, phase, intervalMs = 500, restartFailed = true }) => {
  const census = processCensus(hostPid)
  const phasesSeen = {}
  const probes = {}
  const operatorRestarts = {}
  const samples = []
  const t0 = Date.now()
  let latest = []
  let running = true
  const round = async () => {
    const p = phase()
    census.sample()
    samples.push({ t_s: (Date.now() - t0) / 1000, fds: openFds(hostPid), rss: rssBytes(hostPid), phase: p })
    const r = await control.components(3_000)
    probes[p] ??= { ok: 0, failed: 0, max_ms: 0, errors: {} }
    const probe = probes[p]
    if (r.components === undefined) {
      probe.failed++
      probe.errors[String(r.error)] = (probe.errors[String(r.error)] ?? 0) + 1
      return
    }
    probe.ok++
    probe.max_ms = Math.max(probe.max_ms, r.ms)
    latest = r.components
    for (const c of r.components) {
      phasesSeen[c.id] ??= new Set()
      phasesSeen[c.id].add(c.phase)
      if (restartFailed && c.phase === "failed") {
        operatorRestarts[c.id] = (operatorRestarts[c.id] ?? 0) + 1
        await control.post(`/v1/components/${c.id}/restart`, undefined, 10_000)
      }
    }
  }
  const done = (async () => {
    while (running) {
      await round()
      await sleep(intervalMs)
    }
  })()
  return {
    census,
    samples,
    probes,
    operatorRestarts,
    /** Phases seen per component, as sorted arrays. */
    phasesSeen: () => Object.fromEntries(Object.entries(phasesSeen).map(([id, s]) => [id, [...s].sort()])),
    /** The components of the last successful probe. */
    latest: () => latest,
    /** Stops after the round in progress. */
    stop: async () => {
      running = false
      await done
      census.sample()
    }
  }
}
