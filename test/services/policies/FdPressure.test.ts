import { describe, expect, it } from "@effect/vitest"
import {
  defaultFdPressurePolicy,
  type FdPressureEvent,
  type FdPressurePolicy,
  type FdPressureState,
  type FdPressureTransition,
  initialFdPressureState,
  step
} from "../../../src/services/policies/FdPressure.js"

const policy: FdPressurePolicy = { highWatermark: 0.9, lowWatermark: 0.75, recoveryStreak: 4, retryAfterMs: 500 }

const accepted = (openFds: number, softLimit = 100): FdPressureEvent => ({ _tag: "Accepted", openFds, softLimit })
const sampled = (openFds: number, softLimit = 100): FdPressureEvent => ({ _tag: "Sampled", openFds, softLimit })
const acceptFailed = (code: string): FdPressureEvent => ({ _tag: "AcceptFailed", code })

const run = (events: ReadonlyArray<FdPressureEvent>, from: FdPressureState = initialFdPressureState) => {
  let state = from
  const transitions: Array<FdPressureTransition> = []
  for (const event of events) {
    const next = step(policy, state, event)
    state = next.state
    transitions.push(next.transition)
  }
  return { state, transitions }
}

const demoted = run([acceptFailed("EMFILE")]).state

describe("fd pressure", () => {
  it("defaults to 90% / 75% of the soft limit and a streak of 32", () => {
    expect(defaultFdPressurePolicy).toEqual({ highWatermark: 0.9, lowWatermark: 0.75, recoveryStreak: 32, retryAfterMs: 1_000 })
  })

  it("stays healthy while fds are below the high watermark", () => {
    const { state, transitions } = run([accepted(10), accepted(89), sampled(89)])
    expect(state).toEqual(initialFdPressureState)
    expect(transitions).toEqual(["unchanged", "unchanged", "unchanged"])
  })

  it.each(["EMFILE", "ENFILE"])("demotes when an accept fails with %s", (code) => {
    const { state, transitions } = run([acceptFailed(code)])
    expect(transitions).toEqual(["demoted"])
    expect(state).toEqual({ demoted: true, healthyStreak: 0, demotions: 1, recoveries: 0, lastReason: `accept failed with ${code}` })
  })

  it("ignores accept failures that are not about descriptors", () => {
    expect(run([acceptFailed("ECONNABORTED")]).state).toEqual(initialFdPressureState)
  })

  it("demotes when open fds reach the high watermark, on an accept or a sample", () => {
    expect(run([accepted(90)]).transitions).toEqual(["demoted"])
    const sampledHigh = run([sampled(95)])
    expect(sampledHigh.transitions).toEqual(["demoted"])
    expect(sampledHigh.state.lastReason).toBe("95 of 100 descriptors open (high watermark 90%)")
  })

  it("recovers only after a full streak of healthy accepts below the low watermark", () => {
    const { state, transitions } = run([accepted(10), accepted(10), accepted(10), accepted(10)], demoted)
    expect(transitions).toEqual(["unchanged", "unchanged", "unchanged", "recovered"])
    expect(state).toEqual({ demoted: false, healthyStreak: 0, demotions: 1, recoveries: 1, lastReason: "accept failed with EMFILE" })
  })

  it("restarts the streak on an accept between the watermarks (hysteresis)", () => {
    const { state } = run([accepted(10), accepted(10), accepted(80), accepted(10), accepted(10), accepted(10)], demoted)
    expect(state.demoted).toBe(true)
    expect(state.healthyStreak).toBe(3)
    expect(run([accepted(10)], state).transitions).toEqual(["recovered"])
  })

  it("restarts the streak on another EMFILE without counting a second demotion", () => {
    const { state, transitions } = run([accepted(10), accepted(10), acceptFailed("EMFILE")], demoted)
    expect(transitions).toEqual(["unchanged", "unchanged", "unchanged"])
    expect(state).toMatchObject({ demoted: true, healthyStreak: 0, demotions: 1 })
  })

  it("restarts the streak on a sample between the watermarks; a low sample neither breaks nor extends it", () => {
    const between = run([accepted(10), accepted(10), sampled(80)], demoted).state
    expect(between.healthyStreak).toBe(0)
    const low = run([accepted(10), accepted(10), sampled(10)], demoted).state
    expect(low.healthyStreak).toBe(2)
  })

  it("counts every demotion and recovery", () => {
    const cycle = [acceptFailed("EMFILE"), accepted(1), accepted(1), accepted(1), accepted(1)]
    const { state } = run([...cycle, ...cycle, ...cycle])
    expect(state).toMatchObject({ demoted: false, demotions: 3, recoveries: 3 })
  })

  it("skips the watermarks when the soft limit is unknown", () => {
    expect(run([accepted(1_000_000, Infinity), sampled(5, 0)]).state).toEqual(initialFdPressureState)
    const { transitions } = run([accepted(1_000, 0), accepted(1_000, 0), accepted(1_000, 0), accepted(1_000, 0)], demoted)
    expect(transitions.at(-1)).toBe("recovered")
  })
})
