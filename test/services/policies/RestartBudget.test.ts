import { describe, expect, it } from "@effect/vitest"
import { afterRun, budgetUsage, initialRestartBudget, markUp, onFailure, type RestartBudgetPolicy } from "../../../src/services/policies/RestartBudget.js"

const policy: RestartBudgetPolicy = {
  mode: "on_failure",
  max_restarts: 3,
  window_sec: 60,
  backoff_initial_ms: 200,
  backoff_max_ms: 1_000,
  stable_after_sec: 120
}

describe("restart budget", () => {
  it("never restarts under mode never", () => {
    const { decision } = onFailure({ ...policy, mode: "never" }, initialRestartBudget, 0, 0)
    expect(decision).toEqual({ _tag: "GiveUp", reason: "restart policy is never" })
  })

  it("restarts max_restarts times with exponential backoff capped at backoff_max_ms, then gives up", () => {
    let state = initialRestartBudget
    const delays: Array<number> = []
    for (let i = 0; i < 3; i++) {
      const step = onFailure(policy, state, 1_000 * i, 0)
      if (step.decision._tag !== "Restart") throw new Error("expected a restart")
      delays.push(step.decision.delayMs)
      expect(step.decision.attempt).toBe(i + 1)
      state = step.state
    }
    expect(delays).toEqual([200, 400, 800])
    const spent = onFailure(policy, state, 3_000, 0)
    expect(spent.decision._tag).toBe("GiveUp")
    expect(spent.decision._tag === "GiveUp" && spent.decision.reason).toBe("restart budget spent: 3 restarts within 60 s (max 3)")
  })

  it("caps the delay and adds at most 20% jitter", () => {
    const manyAllowed = { ...policy, max_restarts: 10 }
    let state = initialRestartBudget
    let last = 0
    for (let i = 0; i < 6; i++) {
      const step = onFailure(manyAllowed, state, i, 0.999)
      if (step.decision._tag !== "Restart") throw new Error("expected a restart")
      last = step.decision.delayMs
      expect(step.decision.delayMs).toBeLessThanOrEqual(1_000)
      state = step.state
    }
    expect(last).toBe(1_000)
    const first = onFailure(manyAllowed, initialRestartBudget, 0, 0.5)
    expect(first.decision._tag === "Restart" && first.decision.delayMs).toBe(220)
  })

  it("forgets restarts older than the window (sliding)", () => {
    let state = initialRestartBudget
    for (let i = 0; i < 3; i++) state = onFailure(policy, state, i * 1_000, 0).state
    expect(budgetUsage(policy, state, 3_000)).toEqual({ used: 3, left: 0 })
    expect(budgetUsage(policy, state, 60_500)).toEqual({ used: 2, left: 1 })
    const later = onFailure(policy, state, 60_500, 0)
    expect(later.decision._tag).toBe("Restart")
  })

  it("forgets the whole budget after a stable period up", () => {
    const longWindow = { ...policy, window_sec: 3_600 }
    let state = initialRestartBudget
    for (let i = 0; i < 3; i++) state = onFailure(longWindow, state, i, 0).state
    state = markUp(state, 10)
    expect(onFailure(longWindow, state, 10 + 119_999, 0).decision._tag).toBe("GiveUp")
    const stable = onFailure(longWindow, state, 10 + 120_000, 0)
    expect(stable.decision).toEqual({ _tag: "Restart", delayMs: 200, attempt: 1 })
  })
})

describe("restart budget after a run (afterRun)", () => {
  const endings = ["crashed", "crashed_starting", "exited_cleanly", "unhealthy"] as const
  const table: ReadonlyArray<readonly [RestartBudgetPolicy["mode"], (typeof endings)[number], string]> = [
    ["on_failure", "crashed", "Restart"],
    ["on_failure", "crashed_starting", "Restart"],
    ["on_failure", "exited_cleanly", "Stay"],
    ["on_failure", "unhealthy", "Restart"],
    ["always", "crashed", "Restart"],
    ["always", "crashed_starting", "Restart"],
    ["always", "exited_cleanly", "Restart"],
    ["always", "unhealthy", "Restart"],
    ["never", "crashed", "GiveUp"],
    ["never", "crashed_starting", "GiveUp"],
    ["never", "exited_cleanly", "Stay"],
    ["never", "unhealthy", "GiveUp"]
  ]

  it.each(table)("mode %s, run %s: %s", (mode, ending, expected) => {
    expect(afterRun({ ...policy, mode }, initialRestartBudget, ending, 0, 0).decision._tag).toBe(expected)
  })

  it("a clean exit that stays stopped spends nothing and says which mode would restart it", () => {
    const step = afterRun(policy, initialRestartBudget, "exited_cleanly", 0, 0)
    expect(step.decision).toEqual({ _tag: "Stay", reason: "restart_policy.mode on_failure does not restart a clean exit (\"always\" does)" })
    expect(budgetUsage(policy, step.state, 0)).toEqual({ used: 0, left: 3 })
  })

  it("under always, clean exits and crashes spend one budget, then it gives up", () => {
    const always = { ...policy, mode: "always" as const }
    let state = initialRestartBudget
    for (const ending of ["exited_cleanly", "crashed_starting", "unhealthy"] as const) state = afterRun(always, state, ending, 0, 0).state
    expect(budgetUsage(always, state, 0)).toEqual({ used: 3, left: 0 })
    expect(afterRun(always, state, "exited_cleanly", 1, 0).decision._tag).toBe("GiveUp")
  })
})
