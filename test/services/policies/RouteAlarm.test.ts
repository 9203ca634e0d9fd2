import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import {
  defaultRouteAlarmPolicy,
  Failure,
  failuresInWindow,
  initialRouteAlarmState,
  routeAlarmPolicyProblems,
  step,
  Success,
  Tick,
  type RouteAlarmEvent,
  type RouteAlarmPolicy,
  type RouteAlarmState,
  type RouteAlarmTransition,
  type RouteFailureKind
} from "../../../src/services/policies/RouteAlarm.js"

const policy: RouteAlarmPolicy = { threshold: 3, windowMs: 1_000, recoverySuccesses: 2, quietMs: 5_000 }

const run = (
  events: ReadonlyArray<RouteAlarmEvent>,
  from: RouteAlarmState = initialRouteAlarmState,
  using: RouteAlarmPolicy = policy
): { readonly state: RouteAlarmState; readonly transitions: ReadonlyArray<RouteAlarmTransition> } => {
  let state = from
  const transitions: Array<RouteAlarmTransition> = []
  for (const event of events) {
    const next = step(using, state, event)
    state = next.state
    transitions.push(next.transition)
  }
  return { state, transitions }
}

const defects = (...times: ReadonlyArray<number>): ReadonlyArray<RouteAlarmEvent> =>
  times.map((at) => Failure("defect", at, `boom at ${at}`))

const successes = (...times: ReadonlyArray<number>): ReadonlyArray<RouteAlarmEvent> => times.map((at) => Success(at))

/** A route alarmed at t=200 by defects at 0, 100 and 200. */
const alarmedAt200 = run(defects(0, 100, 200)).state

describe("RouteAlarm policy", () => {
  describe("raising", () => {
    it("defaults to 5 failures within 60 s, cleared by 3 successes or a quiet minute", () => {
      expect(defaultRouteAlarmPolicy).toEqual({ threshold: 5, windowMs: 60_000, recoverySuccesses: 3, quietMs: 60_000 })
    })

    it("does not raise on threshold - 1 failures inside the window", () => {
      const { state, transitions } = run(defects(0, 10))
      expect(transitions).toEqual(["none", "none"])
      expect(state.alarmed).toBe(false)
      expect(state.raisedAt).toBeNull()
      expect(state.failuresTotal).toBe(2)
    })

    it("does not raise when the failures are spread wider than the window", () => {
      const { state, transitions } = run(defects(0, 600, 1_200, 1_800, 2_400, 3_000))
      expect(transitions).toEqual(["none", "none", "none", "none", "none", "none"])
      expect(state.alarmed).toBe(false)
      expect(state.failuresTotal).toBe(6)
    })

    it("counts a failure exactly windowMs old as outside the window", () => {
      expect(run(defects(0, 500, 1_000)).transitions).toEqual(["none", "none", "none"])
      expect(run(defects(0, 500, 999)).transitions).toEqual(["none", "none", "raised"])
    })

    it("raises exactly once when threshold failures land inside the window", () => {
      const { state, transitions } = run([...defects(0, 100, 200), Failure("timeout", 300, "slow"), ...defects(400)])
      expect(transitions).toEqual(["none", "none", "raised", "none", "none"])
      expect(state.alarmed).toBe(true)
      expect(state.raisedAt).toBe(200)
      expect(state.failuresTotal).toBe(5)
    })

    it("counts timeouts and defects alike and remembers the last one", () => {
      const { state, transitions } = run([
        Failure("timeout", 0, "handler ran past 5000 ms"),
        Failure("defect", 10, "TypeError: x is undefined"),
        Failure("timeout", 20, "handler ran past 5000 ms")
      ])
      expect(transitions).toEqual(["none", "none", "raised"])
      expect(state.lastFailure).toEqual({ at: 20, kind: "timeout", message: "handler ran past 5000 ms" })
    })

    it("raises on the first failure when the threshold is 1", () => {
      const single = { ...policy, threshold: 1 }
      expect(run(defects(5), initialRouteAlarmState, single).transitions).toEqual(["raised"])
    })

    it("keeps at most threshold failure timestamps however many failures arrive", () => {
      const { state } = run(defects(...Array.from({ length: 100 }, (_, i) => i)))
      expect(state.recentFailures).toEqual([97, 98, 99])
      expect(state.failuresTotal).toBe(100)
    })

    it("ignores successes between failures when deciding to raise", () => {
      const { transitions } = run([...defects(0), ...successes(1, 2, 3), ...defects(4), ...successes(5), ...defects(6)])
      expect(transitions).toEqual(["none", "none", "none", "none", "none", "none", "raised"])
    })
  })

  describe("while alarmed", () => {
    it("keeps the alarm with fewer successes than recoverySuccesses", () => {
      const slow = { ...policy, recoverySuccesses: 3 }
      const { state, transitions } = run(successes(300, 400), alarmedAt200, slow)
      expect(transitions).toEqual(["none", "none"])
      expect(state.alarmed).toBe(true)
      expect(state.successStreak).toBe(2)
    })

    it("resets the success streak on a failure", () => {
      const { state, transitions } = run([...successes(300), ...defects(400), ...successes(500)], alarmedAt200)
      expect(transitions).toEqual(["none", "none", "none"])
      expect(state.alarmed).toBe(true)
      expect(state.successStreak).toBe(1)
      expect(state.raisedAt).toBe(200)
    })

    it("stays alarmed while failures keep coming, however long ago it was raised", () => {
      const steady = [4_000, 8_000, 12_000, 16_000].flatMap((at) => [...defects(at), Tick(at + 4_999)])
      const { state, transitions } = run(steady, alarmedAt200)
      expect(transitions.every((transition) => transition === "none")).toBe(true)
      expect(state.alarmed).toBe(true)
      expect(state.raisedAt).toBe(200)
    })

    it("stays alarmed on a tick less than quietMs after the last failure", () => {
      const { state, transitions } = run([Tick(5_199)], alarmedAt200)
      expect(transitions).toEqual(["none"])
      expect(state).toBe(alarmedAt200)
    })
  })

  describe("clearing", () => {
    it("clears with recoverySuccesses consecutive successes", () => {
      const { state, transitions } = run(successes(300, 400), alarmedAt200)
      expect(transitions).toEqual(["none", "cleared"])
      expect(state).toEqual({
        recentFailures: [],
        alarmed: false,
        raisedAt: null,
        successStreak: 0,
        lastFailure: { at: 200, kind: "defect", message: "boom at 200" },
        failuresTotal: 3
      })
    })

    it("clears after a broken streak once enough successes follow the last failure", () => {
      const { transitions } = run([...successes(300), ...defects(400), ...successes(500, 600)], alarmedAt200)
      expect(transitions).toEqual(["none", "none", "none", "cleared"])
    })

    it("clears on a tick quietMs after the last failure, forgetting its failures", () => {
      const { state, transitions } = run([Tick(5_200)], alarmedAt200)
      expect(transitions).toEqual(["cleared"])
      expect(state).toMatchObject({ alarmed: false, raisedAt: null, recentFailures: [], successStreak: 0, failuresTotal: 3 })
    })

    it("clears a quiet alarm on whatever event comes next: a success, or a failure that starts a new count", () => {
      expect(run(successes(5_200), alarmedAt200).transitions).toEqual(["cleared"])
      const { state, transitions } = run(defects(5_200, 5_300), alarmedAt200)
      expect(transitions).toEqual(["cleared", "none"])
      expect(state.alarmed).toBe(false)
      expect(state.recentFailures).toEqual([5_200, 5_300])
    })

    it("never changes a route that is not alarmed on a tick", () => {
      const failing = run(defects(0, 10)).state
      expect(step(policy, failing, Tick(1_000_000))).toEqual({ state: failing, transition: "none" })
    })

    it("needs a fresh burst to raise again: the failures that raised it are forgotten", () => {
      const cleared = run(successes(300, 400), alarmedAt200).state
      const { state, transitions } = run(defects(500, 600, 700, 800), cleared)
      expect(transitions).toEqual(["none", "none", "raised", "none"])
      expect(state.raisedAt).toBe(700)
    })
  })

  describe("cost on the hot path", () => {
    it("returns the same state object for a success on a route that is not alarmed", () => {
      expect(step(policy, initialRouteAlarmState, Success(0))).toEqual({ state: initialRouteAlarmState, transition: "none" })
      const failing = run(defects(0, 10)).state
      expect(step(policy, failing, Success(20)).state).toBe(failing)
      const cleared = run(successes(300, 400), alarmedAt200).state
      expect(step(policy, cleared, Success(500)).state).toBe(cleared)
    })
  })

  describe("failuresInWindow", () => {
    it("counts the kept failures inside (now - windowMs, now]", () => {
      const state = run(defects(0, 400, 800)).state
      expect(failuresInWindow(policy, state, 800)).toBe(3)
      expect(failuresInWindow(policy, state, 1_000)).toBe(2)
      expect(failuresInWindow(policy, state, 1_800)).toBe(0)
    })
  })

  describe("routeAlarmPolicyProblems", () => {
    it("accepts the default policy", () => {
      expect(routeAlarmPolicyProblems(defaultRouteAlarmPolicy)).toEqual([])
    })

    it("names every unusable field and the value it got", () => {
      expect(routeAlarmPolicyProblems({ threshold: 0, windowMs: -1, recoverySuccesses: 1.5, quietMs: 0 })).toEqual([
        "threshold: expected a positive integer, got 0",
        "windowMs: expected a positive number of milliseconds, got -1",
        "recoverySuccesses: expected a positive integer, got 1.5",
        "quietMs: expected a positive number of milliseconds, got 0"
      ])
    })
  })

  describe("invariants over random event sequences", () => {
    const arbPolicy = FastCheck.record({
      threshold: FastCheck.integer({ min: 1, max: 6 }),
      windowMs: FastCheck.integer({ min: 1, max: 2_000 }),
      recoverySuccesses: FastCheck.integer({ min: 1, max: 4 }),
      quietMs: FastCheck.integer({ min: 1, max: 3_000 })
    })
    const arbSteps = FastCheck.array(
      FastCheck.record({
        gapMs: FastCheck.integer({ min: 0, max: 700 }),
        outcome: FastCheck.constantFrom<"success" | "tick" | RouteFailureKind>("success", "success", "tick", "defect", "timeout")
      }),
      { maxLength: 200 }
    )

    it.prop(
      "never clears a route that was not alarmed, never raises one that was, and agrees with a naive model",
      { policy: arbPolicy, steps: arbSteps },
      ({ policy: randomPolicy, steps }) => {
        let state = initialRouteAlarmState
        let now = 0
        // Naive model: alarmed or not, every failure since the last clear, the last failure, and the
        // success streak while alarmed.
        let alarmed = false
        let lastFailureAt = -Infinity
        let failuresSinceClear: Array<number> = []
        let streak = 0
        let failuresTotal = 0
        for (const { gapMs, outcome } of steps) {
          now += gapMs
          const event = outcome === "success" ? Success(now) : outcome === "tick" ? Tick(now) : Failure(outcome, now, `${outcome} at ${now}`)
          const before = state
          const { state: after, transition } = step(randomPolicy, before, event)

          if (transition === "cleared") expect(before.alarmed).toBe(true)
          expect(after.alarmed).toBe(transition === "raised" || (before.alarmed && transition !== "cleared"))

          let expected: RouteAlarmTransition = "none"
          if (alarmed && now - lastFailureAt >= randomPolicy.quietMs) {
            expected = "cleared"
            alarmed = false
            failuresSinceClear = []
            streak = 0
          }
          if (event._tag === "Failure") {
            failuresTotal++
            failuresSinceClear.push(now)
            lastFailureAt = now
            streak = 0
            const inWindow = failuresSinceClear.filter((at) => at > now - randomPolicy.windowMs).length
            if (!alarmed && inWindow >= randomPolicy.threshold) {
              expected = "raised"
              alarmed = true
            }
          } else if (event._tag === "Success" && alarmed) {
            streak++
            if (streak >= randomPolicy.recoverySuccesses) {
              expected = "cleared"
              alarmed = false
              failuresSinceClear = []
              streak = 0
            }
          } else if (!before.alarmed) {
            expect(after).toBe(before)
          }
          expect(transition).toBe(expected)

          expect(after.recentFailures.length).toBeLessThanOrEqual(randomPolicy.threshold)
          expect(after.raisedAt !== null).toBe(after.alarmed)
          expect(after.successStreak).toBeLessThan(randomPolicy.recoverySuccesses)
          expect(after.successStreak).toBe(after.alarmed ? streak : 0)
          expect(after.failuresTotal).toBe(failuresTotal)
          state = after
        }
      }
    )
  })
})
