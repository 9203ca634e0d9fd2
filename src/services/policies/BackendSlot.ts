/**
 * Backend slot: what an acquire of a registry key does given what the key holds — reuse its live
 * backend (trusting a recent connect), wait on the launch in progress, or launch one if the spawn
 * budget allows — and how a verified or dead backend changes the slot. Pure: time is passed in.
 */
import { type SpawnBudgetState, tryLaunch } from "./SpawnBudget.js"

/** Tunables of the slot decision. */
export interface BackendSlotPolicy {
  /** How long an endpoint that accepted a connection is trusted without a new connect probe. */
  readonly livenessCacheMs: number
  /** Dead backends one acquire may meet (each retired, then the key asked again) before it gives up. */
  readonly maxDeadBackends: number
}

/**
 * Trust a verified endpoint for 1 s: a probe per hello floods a thread-per-connection backend's
 * accept queue under load and gets it retired as dead. Give up after 3 dead backends in a row.
 */
export const defaultBackendSlotPolicy: BackendSlotPolicy = { livenessCacheMs: 1_000, maxDeadBackends: 3 }

/** A launch of the key is in progress; `L` is the caller's record of it. */
export interface Starting<L> {
  readonly _tag: "Starting"
  readonly launch: L
}

/** The key's backend is running and was ready; `B` is the caller's record of it. */
export interface Live<B> {
  readonly _tag: "Live"
  readonly backend: B
  /** When its endpoint last accepted a connection (ready, or a liveness probe). */
  readonly verifiedAt: number
  readonly lastHelloAt: number
  /** Idle bound of its definition (`idle_exit_sec`) as of the last acquire; undefined: none. */
  readonly idleExitMs: number | undefined
}

/** What one key holds; a key without a slot holds nothing. */
export type BackendSlot<L, B> = Starting<L> | Live<B>

/** Every key's slot, and the spawn budget they launch from. */
export interface BackendSlots<L, B> {
  /** Set once the registry is closing: every acquire is refused. */
  readonly closed: boolean
  readonly slots: ReadonlyMap<string, BackendSlot<L, B>>
  readonly budget: SpawnBudgetState
}

/** No slots, the given budget. */
export const makeBackendSlots = <L, B>(budget: SpawnBudgetState): BackendSlots<L, B> => ({
  closed: false,
  slots: new Map(),
  budget
})

/** An acquire of `key`. */
export interface Acquire<L> {
  readonly key: string
  /** Dead backends this acquire already met (and retired) before asking again. */
  readonly deadBackends: number
  /** The record of the launch this acquire would start; kept in the slot only if it does. */
  readonly launch: L
  /** Idle bound of the definition as read for this acquire; a reused backend takes it. */
  readonly idleExitMs: number | undefined
}

/** What an acquire does. */
export type AcquireDecision<L, B> =
  /** The registry is closing. */
  | { readonly _tag: "Stopping" }
  /** Too many dead backends for one acquire. */
  | { readonly _tag: "GiveUp"; readonly deadBackends: number }
  /** Answer the live backend; unless `trusted` (verified within `livenessCacheMs`), probe it first. */
  | { readonly _tag: "Reuse"; readonly backend: B; readonly trusted: boolean }
  /** Wait on the launch in progress. */
  | { readonly _tag: "Wait"; readonly launch: L }
  /** Start the launch of the event (its attempt is counted in the budget). */
  | { readonly _tag: "Launch"; readonly launch: L }
  /** The key's spawn budget is spent; a launch is allowed again in `retryAfterMs`. */
  | { readonly _tag: "BudgetSpent"; readonly retryAfterMs: number }

/** A backend of `key` that just proved alive or dead. */
export interface BackendReport<B> {
  readonly key: string
  readonly backend: B
}

/** What a dead backend does to its key: retire it (it was the key's live backend), or nothing. */
export type DeadDecision =
  | { readonly _tag: "Retire"; readonly lastHelloAt: number }
  | { readonly _tag: "Stale" }

const withSlot = <L, B>(state: BackendSlots<L, B>, key: string, slot: BackendSlot<L, B> | undefined): BackendSlots<L, B> => {
  const slots = new Map(state.slots)
  if (slot === undefined) slots.delete(key)
  else slots.set(key, slot)
  return { closed: state.closed, slots, budget: state.budget }
}

const liveSlotOf = <L, B>(state: BackendSlots<L, B>, report: BackendReport<B>): Live<B> | undefined => {
  const slot = state.slots.get(report.key)
  return slot?._tag === "Live" && slot.backend === report.backend ? slot : undefined
}

/** Decides an acquire at `now`. */
export const acquire = <L, B>(
  policy: BackendSlotPolicy,
  state: BackendSlots<L, B>,
  event: Acquire<L>,
  now: number
): { readonly state: BackendSlots<L, B>; readonly decision: AcquireDecision<L, B> } => {
  if (event.deadBackends >= policy.maxDeadBackends) {
    return { state, decision: { _tag: "GiveUp", deadBackends: event.deadBackends } }
  }
  if (state.closed) return { state, decision: { _tag: "Stopping" } }
  const slot = state.slots.get(event.key)
  if (slot?._tag === "Live") {
    // Touched now, so the idle sweeper cannot pick it while this acquire checks it.
    const touched: Live<B> = { ...slot, lastHelloAt: now, idleExitMs: event.idleExitMs }
    return {
      state: withSlot(state, event.key, touched),
      decision: { _tag: "Reuse", backend: slot.backend, trusted: now - slot.verifiedAt < policy.livenessCacheMs }
    }
  }
  if (slot?._tag === "Starting") return { state, decision: { _tag: "Wait", launch: slot.launch } }
  const budget = tryLaunch(state.budget, event.key, now)
  if (!budget.decision.allowed) {
    return { state: { ...state, budget: budget.state }, decision: { _tag: "BudgetSpent", retryAfterMs: budget.decision.retryAfterMs } }
  }
  const starting: Starting<L> = { _tag: "Starting", launch: event.launch }
  return {
    state: { ...withSlot(state, event.key, starting), budget: budget.state },
    decision: { _tag: "Launch", launch: event.launch }
  }
}

/** The backend's endpoint accepted a connection at `now`: trusted again, if it is still the key's. */
export const verified = <L, B>(state: BackendSlots<L, B>, report: BackendReport<B>, now: number): BackendSlots<L, B> => {
  const live = liveSlotOf(state, report)
  return live === undefined ? state : withSlot(state, report.key, { ...live, verifiedAt: now })
}

/** The backend's process exited or its endpoint refuses connections: the key no longer holds it. */
export const dead = <L, B>(
  state: BackendSlots<L, B>,
  report: BackendReport<B>
): { readonly state: BackendSlots<L, B>; readonly decision: DeadDecision } => {
  const live = liveSlotOf(state, report)
  return live === undefined
    ? { state, decision: { _tag: "Stale" } }
    : { state: withSlot(state, report.key, undefined), decision: { _tag: "Retire", lastHelloAt: live.lastHelloAt } }
}
