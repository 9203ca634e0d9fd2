// A background load for the fault campaign and the soak: `workers` loops that each run `action`,
// count its outcome (a short string) under the current phase, pause, and run it again, until
// stopped. `stop()` waits for the calls in flight; each action must bound its own time.
import { setTimeout as sleep } from "node:timers/promises"

/**
 * Starts the loops. `phase()` names the phase an outcome is counted under; `action(i)` resolves an
 * outcome string (it must not reject: a rejection is counted as `threw: <message>`).
 */
export const startLoop = ({ workers, pauseMs, action, phase }) => {
  const byPhase = {}
  let attempted = 0
  let running = true
  const count = (p, outcome) => {
    byPhase[p] ??= {}
    byPhase[p][outcome] = (byPhase[p][outcome] ?? 0) + 1
  }
  const worker = async () => {
    while (running) {
      const i = attempted++
      const p = phase()
      let outcome
      try {
        outcome = await action(i)
      } catch (error) {
        outcome = `threw: ${String(error?.message ?? error).slice(0, 80)}`
      }
      count(p, outcome)
      if (running && pauseMs > 0) await sleep(pauseMs)
    }
  }
  const done = Promise.all(Array.from({ length: workers }, worker))
  return {
    /** Outcome counts per phase: `{ phase: { outcome: n } }`. */
    byPhase,
    /** Calls started so far. */
    attempted: () => attempted,
    /** Stops starting calls and resolves once the ones in flight settled. */
    stop: async () => {
      running = false
      await done
    }
  }
}

/** Sums `byPhase` over phases: `{ outcome: n }`. */
export const totals = (byPhase) => {
  const out = {}
  for (const outcomes of Object.values(byPhase)) for (const [k, v] of Object.entries(outcomes)) out[k] = (out[k] ?? 0) + v
  return out
}
