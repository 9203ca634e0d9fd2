import { describe, expect, it } from "@effect/vitest"
import {
  acquire,
  type Acquire,
  type AcquireDecision,
  type BackendSlot,
  type BackendSlotPolicy,
  type BackendSlots,
  dead,
  defaultBackendSlotPolicy,
  makeBackendSlots,
  verified
} from "../../../src/services/policies/BackendSlot.js"
import { makeSpawnBudget, type SpawnBudgetState, tryLaunch, usage } from "../../../src/services/policies/SpawnBudget.js"

interface TestLaunch {
  readonly id: string
}
interface TestBackend {
  readonly pid: number
}

const policy: BackendSlotPolicy = { livenessCacheMs: 1_000, maxDeadBackends: 3 }
const key = "echo@1.0.0/sha256:ab/launch:cd"
const other = "other@1.0.0/sha256:ef/launch:01"
const now = 100_000

const launchA: TestLaunch = { id: "a" }
const launchB: TestLaunch = { id: "b" }
const backend: TestBackend = { pid: 41 }
const successor: TestBackend = { pid: 42 }

const event = (fields: Partial<Acquire<TestLaunch>> = {}): Acquire<TestLaunch> => ({
  key,
  deadBackends: 0,
  launch: launchB,
  idleExitMs: 5_000,
  ...fields
})

/** A budget with `used` launches of `key` at `now` (3 spend it under the default policy). */
const budgetWith = (used: number): SpawnBudgetState => {
  let budget = makeSpawnBudget()
  for (let i = 0; i < used; i++) budget = tryLaunch(budget, key, now).state
  return budget
}

const live = (verifiedAt: number, of: TestBackend = backend): BackendSlot<TestLaunch, TestBackend> => ({
  _tag: "Live",
  backend: of,
  verifiedAt,
  lastHelloAt: 50_000,
  idleExitMs: undefined
})

const starting: BackendSlot<TestLaunch, TestBackend> = { _tag: "Starting", launch: launchA }

const stateOf = (
  slot: BackendSlot<TestLaunch, TestBackend> | undefined,
  fields: { readonly closed?: boolean; readonly budget?: SpawnBudgetState } = {}
): BackendSlots<TestLaunch, TestBackend> => {
  const base = makeBackendSlots<TestLaunch, TestBackend>(fields.budget ?? makeSpawnBudget())
  return {
    ...base,
    closed: fields.closed ?? false,
    slots: slot === undefined ? new Map() : new Map([[key, slot]])
  }
}

type SlotKind = "empty" | "starting" | "live, verified recently" | "live, verified long ago"

const slotOf = (kind: SlotKind): BackendSlot<TestLaunch, TestBackend> | undefined => {
  switch (kind) {
    case "empty":
      return undefined
    case "starting":
      return starting
    case "live, verified recently":
      return live(now - 999)
    case "live, verified long ago":
      return live(now - 1_000)
  }
}

/** The spec, in priority order. */
const expected = (
  kind: SlotKind,
  closed: boolean,
  budgetSpent: boolean,
  deadBackends: number
): AcquireDecision<TestLaunch, TestBackend> => {
  if (deadBackends >= policy.maxDeadBackends) return { _tag: "GiveUp", deadBackends }
  if (closed) return { _tag: "Stopping" }
  switch (kind) {
    case "live, verified recently":
      return { _tag: "Reuse", backend, trusted: true }
    case "live, verified long ago":
      return { _tag: "Reuse", backend, trusted: false }
    case "starting":
      return { _tag: "Wait", launch: launchA }
    case "empty":
      return budgetSpent ? { _tag: "BudgetSpent", retryAfterMs: 30_000 } : { _tag: "Launch", launch: launchB }
  }
}

const kinds: ReadonlyArray<SlotKind> = ["empty", "starting", "live, verified recently", "live, verified long ago"]
const table = kinds.flatMap((kind) =>
  [false, true].flatMap((closed) =>
    [false, true].flatMap((budgetSpent) =>
      [0, 2, 3, 4].map((deadBackends) => ({ kind, closed, budgetSpent, deadBackends })))))

describe("backend slot", () => {
  it("defaults to trusting a verified endpoint for 1 s and giving up after 3 dead backends", () => {
    expect(defaultBackendSlotPolicy).toEqual({ livenessCacheMs: 1_000, maxDeadBackends: 3 })
  })

  it.each(table)(
    "decides an acquire of a key that is $kind (closed: $closed, budget spent: $budgetSpent, dead backends met: $deadBackends)",
    ({ budgetSpent, closed, deadBackends, kind }) => {
      const state = stateOf(slotOf(kind), { closed, budget: budgetWith(budgetSpent ? 3 : 0) })
      expect(acquire(policy, state, event({ deadBackends }), now).decision).toEqual(expected(kind, closed, budgetSpent, deadBackends))
    }
  )

  it("launches into an empty slot and counts the attempt in the key's budget", () => {
    const { decision, state } = acquire(policy, stateOf(undefined), event(), now)
    expect(decision).toEqual({ _tag: "Launch", launch: launchB })
    expect(state.slots.get(key)).toEqual({ _tag: "Starting", launch: launchB })
    expect(usage(state.budget, key, now)).toEqual({ used: 1, retryAfterMs: 0 })
  })

  it("refuses a launch past the budget with the wait until the oldest attempt leaves the window, keeping the slot empty", () => {
    const budget = tryLaunch(tryLaunch(tryLaunch(makeSpawnBudget(), key, now - 20_000).state, key, now - 10_000).state, key, now).state
    const { decision, state } = acquire(policy, stateOf(undefined, { budget }), event(), now)
    expect(decision).toEqual({ _tag: "BudgetSpent", retryAfterMs: 10_000 })
    expect(state.slots.size).toBe(0)
    expect(usage(state.budget, key, now)).toEqual({ used: 3, retryAfterMs: 10_000 })
  })

  it("lets every acquire of a starting key wait on the same launch without spending the budget", () => {
    const before = stateOf(starting)
    const first = acquire(policy, before, event({ launch: launchB }), now)
    const second = acquire(policy, first.state, event({ launch: { id: "c" } }), now + 5)
    expect([first.decision, second.decision]).toEqual([{ _tag: "Wait", launch: launchA }, { _tag: "Wait", launch: launchA }])
    expect(second.state).toBe(before)
  })

  it("touches a reused backend (last hello now, the definition's current idle bound) and spends no budget", () => {
    const { decision, state } = acquire(policy, stateOf(live(now - 10)), event({ idleExitMs: 7_000 }), now)
    expect(decision).toEqual({ _tag: "Reuse", backend, trusted: true })
    expect(state.slots.get(key)).toEqual({ _tag: "Live", backend, verifiedAt: now - 10, lastHelloAt: now, idleExitMs: 7_000 })
    expect(usage(state.budget, key, now).used).toBe(0)
  })

  it("stops trusting a verified endpoint exactly livenessCacheMs after its last check", () => {
    const verifiedAt = now - policy.livenessCacheMs
    expect(acquire(policy, stateOf(live(verifiedAt + 1)), event(), now).decision).toMatchObject({ trusted: true })
    expect(acquire(policy, stateOf(live(verifiedAt)), event(), now).decision).toMatchObject({ trusted: false })
  })

  it("changes nothing when it refuses: closed, or too many dead backends", () => {
    for (const slot of [undefined, starting, live(now)]) {
      const closed = stateOf(slot, { closed: true })
      expect(acquire(policy, closed, event(), now).state).toBe(closed)
      const open = stateOf(slot)
      expect(acquire(policy, open, event({ deadBackends: 3 }), now).state).toBe(open)
    }
  })

  it("keeps keys apart: another key's launch neither fills nor blocks this one", () => {
    const state: BackendSlots<TestLaunch, TestBackend> = { ...stateOf(undefined), slots: new Map([[other, starting]]) }
    const { decision, state: next } = acquire(policy, state, event(), now)
    expect(decision).toEqual({ _tag: "Launch", launch: launchB })
    expect([...next.slots.keys()]).toEqual([other, key])
    expect(next.slots.get(other)).toBe(starting)
  })

  it("trusts a backend again once its endpoint is verified", () => {
    const stale = stateOf(live(now - 5_000))
    expect(acquire(policy, stale, event(), now).decision).toMatchObject({ trusted: false })
    const fresh = verified(stale, { key, backend }, now)
    expect(fresh.slots.get(key)).toMatchObject({ verifiedAt: now, lastHelloAt: 50_000 })
    expect(acquire(policy, fresh, event(), now + 999).decision).toMatchObject({ trusted: true })
  })

  it("ignores a verification of a backend the key no longer holds", () => {
    for (const state of [stateOf(undefined), stateOf(starting), stateOf(live(now - 5_000, successor))]) {
      expect(verified(state, { key, backend }, now)).toBe(state)
    }
  })

  it("retires a dead backend that is still the key's, answering its last hello", () => {
    const { decision, state } = dead(stateOf(live(now - 5_000), { closed: true }), { key, backend })
    expect(decision).toEqual({ _tag: "Retire", lastHelloAt: 50_000 })
    expect(state.slots.size).toBe(0)
    expect(state.closed).toBe(true)
  })

  it("leaves the slot alone when the dead backend was already replaced or removed", () => {
    for (const state of [stateOf(undefined), stateOf(starting), stateOf(live(now, successor))]) {
      const step = dead(state, { key, backend })
      expect(step.decision).toEqual({ _tag: "Stale" })
      expect(step.state).toBe(state)
    }
  })

  it("launches afresh after a dead backend is retired, the retry counting toward giving up", () => {
    const retired = dead(stateOf(live(now - 5_000)), { key, backend }).state
    expect(acquire(policy, retired, event({ deadBackends: 1 }), now).decision).toEqual({ _tag: "Launch", launch: launchB })
    expect(acquire(policy, retired, event({ deadBackends: 3 }), now).decision).toEqual({ _tag: "GiveUp", deadBackends: 3 })
  })
})
