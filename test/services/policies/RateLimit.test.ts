import { describe, expect, it } from "@effect/vitest"
import {
  defaultRateLimitPolicy,
  initialRateLimitState,
  type RateDecision,
  type RateLimitPolicy,
  type RateLimitState,
  take,
  tokensAt
} from "../../../src/services/policies/RateLimit.js"

const policy: RateLimitPolicy = { ratePerSec: 10, burst: 3 }

const takeAll = (times: ReadonlyArray<number>, key = "uid:1000", from: RateLimitState = initialRateLimitState) => {
  let state = from
  const decisions: Array<RateDecision> = []
  for (const now of times) {
    const step = take(policy, state, key, now)
    decisions.push(step.decision)
    state = step.state
  }
  return { decisions, state }
}

describe("hello rate limit", () => {
  it("defaults to 50 hellos per second with bursts of 100", () => {
    expect(defaultRateLimitPolicy).toEqual({ ratePerSec: 50, burst: 100 })
  })

  it("lets a quiet peer burst, then refuses with the wait for the next token", () => {
    const { decisions } = takeAll([0, 0, 0, 0])
    expect(decisions).toEqual([{ allowed: true }, { allowed: true }, { allowed: true }, { allowed: false, retryAfterMs: 100 }])
  })

  it("refills at the rate: one token per 100 ms here", () => {
    const { state } = takeAll([0, 0, 0])
    expect(take(policy, state, "uid:1000", 50).decision).toEqual({ allowed: false, retryAfterMs: 50 })
    expect(take(policy, state, "uid:1000", 100).decision).toEqual({ allowed: true })
    expect(tokensAt(policy, state, "uid:1000", 250)).toBeCloseTo(2.5)
  })

  it("never refills past the burst", () => {
    const { state } = takeAll([0])
    expect(tokensAt(policy, state, "uid:1000", 60_000)).toBe(3)
    const { decisions } = takeAll([60_000, 60_000, 60_000, 60_000], "uid:1000", state)
    expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false])
  })

  it("keeps peers independent", () => {
    const { state } = takeAll([0, 0, 0])
    expect(take(policy, state, "uid:1000", 0).decision.allowed).toBe(false)
    expect(take(policy, state, "uid:1001", 0).decision).toEqual({ allowed: true })
  })

  it("sustains exactly the rate under steady load", () => {
    const times = Array.from({ length: 100 }, (_, i) => i * 50)
    const allowed = takeAll(times).decisions.filter((decision) => decision.allowed).length
    // 3 from the burst, then one per 100 ms over the 4.95 s.
    expect(allowed).toBe(3 + 49)
  })

  it("forgets peers whose bucket is full again", () => {
    const { state } = takeAll([0], "a")
    const next = take(policy, state, "b", 1_000).state
    expect([...next.keys()]).toEqual(["b"])
  })

  it("refills nothing and takes nothing away when the clock steps back", () => {
    const { state } = takeAll([1_000, 1_000, 1_000])
    expect(tokensAt(policy, state, "uid:1000", 0)).toBe(0)
    expect(take(policy, state, "uid:1000", 500).decision.allowed).toBe(false)
  })
})
