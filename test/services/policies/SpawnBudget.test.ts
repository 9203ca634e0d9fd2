import { describe, expect, it } from "@effect/vitest"
import {
  defaultSpawnBudgetPolicy,
  makeSpawnBudget,
  type SpawnBudgetState,
  type SpawnDecision,
  tryLaunch,
  usage,
  usageByKey
} from "../../../src/services/policies/SpawnBudget.js"

/** Runs attempts of `key` at the given times; returns the decisions and the final state. */
const attempts = (times: ReadonlyArray<number>, key = "redis@7", from: SpawnBudgetState = makeSpawnBudget()) => {
  let state = from
  const decisions: Array<SpawnDecision> = []
  for (const now of times) {
    const step = tryLaunch(state, key, now)
    decisions.push(step.decision)
    state = step.state
  }
  return { decisions, state }
}

describe("spawn budget", () => {
  it("defaults to 3 launches per 30 s", () => {
    expect(defaultSpawnBudgetPolicy).toEqual({ maxLaunches: 3, windowMs: 30_000 })
  })

  it("allows three launches of a key and refuses the fourth with the wait until the oldest leaves the window", () => {
    const { decisions } = attempts([0, 1_000, 2_000, 5_000])
    expect(decisions).toEqual([
      { allowed: true },
      { allowed: true },
      { allowed: true },
      { allowed: false, retryAfterMs: 25_000 }
    ])
  })

  it("does not count a refused attempt", () => {
    const { state } = attempts([0, 1, 2, 10, 20, 30])
    expect(usage(state, "redis@7", 30)).toEqual({ used: 3, retryAfterMs: 29_970 })
  })

  it("allows one more launch exactly when the oldest attempt is windowMs old (sliding window)", () => {
    const { state } = attempts([0, 1_000, 2_000])
    expect(tryLaunch(state, "redis@7", 29_999).decision).toEqual({ allowed: false, retryAfterMs: 1 })
    const later = tryLaunch(state, "redis@7", 30_000)
    expect(later.decision).toEqual({ allowed: true })
    expect(tryLaunch(later.state, "redis@7", 30_000).decision).toEqual({ allowed: false, retryAfterMs: 1_000 })
  })

  it("keeps keys independent", () => {
    const { state } = attempts([0, 1, 2], "a")
    expect(tryLaunch(state, "a", 3).decision.allowed).toBe(false)
    expect(tryLaunch(state, "b", 3).decision).toEqual({ allowed: true })
  })

  it("honours a custom policy", () => {
    const { decisions } = attempts([0, 10, 60], "k", makeSpawnBudget({ maxLaunches: 1, windowMs: 50 }))
    expect(decisions).toEqual([{ allowed: true }, { allowed: false, retryAfterMs: 40 }, { allowed: true }])
  })

  it("forgets keys whose attempts all left the window", () => {
    const { state } = attempts([0], "old")
    const next = tryLaunch(state, "new", 40_000).state
    expect([...next.attempts.keys()]).toEqual(["new"])
  })

  it("reports usage per key for the admin snapshot", () => {
    let state = attempts([0, 5], "a").state
    state = tryLaunch(state, "b", 10).state
    expect(usageByKey(state, 10)).toEqual([
      { key: "a", used: 2, retryAfterMs: 0 },
      { key: "b", used: 1, retryAfterMs: 0 }
    ])
    expect(usageByKey(state, 30_006)).toEqual([{ key: "b", used: 1, retryAfterMs: 0 }])
    expect(usage(state, "never", 10)).toEqual({ used: 0, retryAfterMs: 0 })
  })

  it("keeps counting attempts when the clock steps back", () => {
    const { state } = attempts([10_000, 10_001, 10_002])
    expect(tryLaunch(state, "redis@7", 5_000).decision).toEqual({ allowed: false, retryAfterMs: 35_000 })
  })
})
