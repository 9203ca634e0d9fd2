// "Wait until the CPUs are quiet": the machine is shared (other sessions' tests run on it), so a bench
// waits, within a bound, for a moment when other processes leave the CPUs alone before it measures.
// Called while none of the bench's own load runs, so whatever is busy is someone else's.
import { setTimeout as sleep } from "node:timers/promises"
import { busyTicks, clockTicks, cpuStat, otherLoad } from "./procStat.mjs"

/**
 * Samples windows of `windowMs` until other processes use less than `below` of each of CPU 0 and
 * CPU 1, or `maxMs` has passed (at least one window is sampled). `waited`: the windows that were not quiet.
 */
export const waitForQuietCpus = async ({ windowMs, maxMs, below }) => {
  const deadline = Date.now() + maxMs
  let waited = 0
  for (;;) {
    const a = cpuStat()
    await sleep(windowMs)
    const b = cpuStat()
    const load = otherLoad(a, b, 0, 0)
    if ((load.cpu0 < below && load.cpu1 < below) || Date.now() >= deadline) return { load, waited }
    waited++
  }
}

/** Before a measurement point (host, broker): up to 3 s of 200 ms windows until others use < 10% of each CPU. */
export const waitQuietBeforePoint = async () => (await waitForQuietCpus({ windowMs: 200, maxMs: 3_000, below: 0.1 })).load

/** Before a whole run (host, broker): up to `maxS` of 1 s windows until others use < 15% of each CPU. */
export const waitQuietBeforeRun = async (maxS) => {
  const { load, waited } = await waitForQuietCpus({ windowMs: 1_000, maxMs: maxS * 1000, below: 0.15 })
  return { waited_s: waited, load }
}

/**
 * Before each run of bench/run.mjs: 500 ms windows, for at most `maxMs`, until all CPUs together are
 * busy (user + nice + system) for less than a quarter of one CPU.
 */
export const waitForQuietMachine = async (maxMs = 3000) => {
  const start = performance.now()
  let busy = Number.NaN
  while (performance.now() - start < maxMs) {
    const b0 = busyTicks()
    await sleep(500)
    busy = (busyTicks() - b0) / clockTicks() / 0.5
    if (busy < 0.25) return { waited_ms: Math.round(performance.now() - start), quiet: true, others_cpu: busy }
  }
  return { waited_ms: Math.round(performance.now() - start), quiet: false, others_cpu: busy }
}
