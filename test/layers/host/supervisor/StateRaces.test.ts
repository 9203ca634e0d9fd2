/**
 * Writers of one component's state racing each other: an invocation timeout (reported from a request's
 * fiber) against another failure or a phase change. Effect preempts a fiber after a fixed number of
 * operations, so each test sweeps where that preemption falls: at no offset may an update be lost or a
 * phase from before a change come back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, PubSub, SubscriptionRef } from "effect"
import { makeManaged } from "../../../../src/layers/host/supervisor/ComponentState.js"
import { makeHealthWatch } from "../../../../src/layers/host/supervisor/HealthWatch.js"
import { makeTransitions } from "../../../../src/layers/host/supervisor/Transitions.js"
import type { LifecycleEvent } from "../../../../src/services/host/Traces.js"
import { configOf, simulatedComponent } from "../../../support/simulatedSupervisor.js"

// Effect 3 preempts a fiber after 2048 operations: the sweep covers one such period and a bit, in steps
// narrower than the few operations between a state read and its write.
const offsets = Array.from({ length: 800 }, (_, i) => i * 3)

const component = configOf({ "sim.one": { ...simulatedComponent, http: { ...simulatedComponent.http, unhealthy_threshold: 2 } } })
  .components["sim.one"]

/** Runs `count` operations first (`Effect.void` would be inlined), so what follows starts at a chosen point of the fiber's slice. */
const after = <A>(count: number, effect: Effect.Effect<A>) =>
  Effect.zipRight(
    Effect.gen(function*() {
      for (let i = 0; i < count; i++) yield* Effect.sync(() => i)
    }),
    effect
  )

/** A ready component with a process, its transitions and its health watch (no checks run: only reports). */
const readyComponent = Effect.gen(function*() {
  if (component === undefined) return yield* Effect.dieMessage("the test config has no component")
  const transitions = makeTransitions(yield* PubSub.unbounded<LifecycleEvent>(), () => Effect.void)
  const health = makeHealthWatch({ get: () => Effect.die("no checks"), postJson: () => Effect.die("no checks") }, transitions, () => Effect.void)
  const managed = yield* makeManaged("sim.one", component)
  yield* SubscriptionRef.update(managed.state, (state) => ({ ...state, phase: "ready" as const, pid: 7 }))
  return { managed, transitions, health }
})

/** Runs both at once, the first delayed by `offset` operations; returns the state after both. */
const race = (offset: number, first: Effect.Effect<void>, second: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const one = yield* Effect.fork(after(offset, first))
    const two = yield* Effect.fork(second)
    yield* Fiber.join(one)
    yield* Fiber.join(two)
  })

describe("racing writers of a component's state", () => {
  it.effect("the sweep reaches past a preemption (else the tests below could not fail)", () =>
    Effect.gen(function*() {
      const order: Array<string> = []
      const last = offsets.at(-1) ?? 0
      yield* race(last, Effect.sync(() => order.push("delayed")), Effect.sync(() => order.push("other")))
      expect(order).toEqual(["other", "delayed"])
    }))

  it.effect("two failures reported at once both count, wherever the scheduler preempts either", () =>
    Effect.gen(function*() {
      const lost: Array<number> = []
      for (const offset of offsets) {
        const { managed, health } = yield* readyComponent
        const timedOut = health.unhealthy(managed, "invocation timed out", null)
        yield* race(offset, timedOut, timedOut)
        const state = yield* SubscriptionRef.get(managed.state)
        if (state.unhealthyStreak !== 2 || state.phase !== "degraded") lost.push(offset)
      }
      expect(lost, "offsets at which a failure was lost").toEqual([])
    }))

  it.effect("a failure reported while the component is being stopped never brings back its phase or pid", () =>
    Effect.gen(function*() {
      const revived: Array<number> = []
      for (const offset of offsets) {
        const { managed, transitions, health } = yield* readyComponent
        yield* race(offset, health.unhealthy(managed, "invocation timed out", null), transitions.transition(managed, "stopping", "operator stop", { pid: null }))
        const state = yield* SubscriptionRef.get(managed.state)
        if (state.phase !== "stopping" || state.pid !== null || state.unhealthyStreak !== 1) revived.push(offset)
      }
      expect(revived, "offsets at which the failure or the stop was undone").toEqual([])
    }))

  it.effect("a phase change preempted mid-way keeps a failure reported meanwhile", () =>
    Effect.gen(function*() {
      const lost: Array<number> = []
      for (const offset of offsets) {
        const { managed, transitions, health } = yield* readyComponent
        yield* race(offset, transitions.transition(managed, "ready", "health recovered", { lastError: null }), health.unhealthy(managed, "invocation timed out", null))
        const state = yield* SubscriptionRef.get(managed.state)
        if (state.unhealthyStreak !== 1) lost.push(offset)
      }
      expect(lost, "offsets at which the failure was lost").toEqual([])
    }))
})
