/**
 * The registry's state — each key's slot (a launch in progress or a live backend), backends being
 * stopped, the last error per key, counters — and its pure transitions, each shaped for one
 * `Ref.modify`. The slot decisions themselves are the `BackendSlot` policy's.
 */
import type { Deferred, Effect } from "effect"
import type { BackendError, RegistryCounters } from "../../../services/broker/BackendRegistry.js"
import type { Endpoint } from "../../../services/broker/BrokerProtocol.js"
import type { ChildHandle, ExitInfo } from "../../../services/host/ProcessLauncher.js"
import {
  type Acquire,
  acquire,
  type AcquireDecision,
  type BackendSlotPolicy,
  type BackendSlots,
  dead,
  type Live,
  makeBackendSlots,
  verified
} from "../../../services/policies/BackendSlot.js"
import { makeSpawnBudget, type SpawnBudgetPolicy } from "../../../services/policies/SpawnBudget.js"

/** A backend whose endpoint accepted a connection once; its process may have died since. */
export interface Backend {
  readonly key: string
  readonly service: string
  readonly version: string
  readonly instance: string
  readonly endpoint: Endpoint
  readonly pid: number
  readonly startedAt: number
  readonly handle: ChildHandle
  /** Done once the process has exited. */
  readonly exited: Deferred.Deferred<ExitInfo>
  /** Stops the process (TERM → KILL) and removes the socket file; later calls wait for the first. */
  readonly stop: Effect.Effect<void>
}

/** A launch in progress; its pid and endpoint are filled in as it gets them. */
export interface PendingLaunch {
  readonly key: string
  readonly service: string
  readonly version: string
  readonly instance: string
  readonly startedAt: number
  readonly pid: number | null
  readonly endpoint: Endpoint | null
  /** Settled once by the launch fiber; every coalesced acquire waits on it. */
  readonly result: Deferred.Deferred<Backend, BackendError>
  /** Completed to cancel the launch (the registry is stopping). */
  readonly cancel: Deferred.Deferred<void>
}

/** A backend taken out of service and being stopped. */
export interface Retiring {
  readonly backend: Backend
  readonly lastHelloAt: number | null
  readonly reason: string
}

/** Everything the registry knows. */
export interface RegistryState extends BackendSlots<PendingLaunch, Backend> {
  /** Backends being stopped, by instance. */
  readonly retiring: ReadonlyMap<string, Retiring>
  /** Last failure per key (a failed launch, a death), the most recent `rememberedErrors` keys. */
  readonly lastErrors: ReadonlyMap<string, string>
  readonly counters: RegistryCounters
}

/** Keys whose last error is remembered for the snapshot. */
const rememberedErrors = 64

const zeroCounters: RegistryCounters = {
  launches: 0,
  coalescedWaits: 0,
  launchFailures: 0,
  budgetRefusals: 0,
  pruned: 0,
  idleExits: 0
}

/** A registry that knows nothing yet, launching under `budget`. */
export const initialRegistryState = (budget: SpawnBudgetPolicy): RegistryState => ({
  ...makeBackendSlots<PendingLaunch, Backend>(makeSpawnBudget(budget)),
  retiring: new Map(),
  lastErrors: new Map(),
  counters: zeroCounters
})

/** An ISO-8601 time for messages and the snapshot. */
export const iso = (millis: number): string => new Date(millis).toISOString()

const count = (state: RegistryState, name: keyof RegistryCounters): RegistryState => ({
  ...state,
  counters: { ...state.counters, [name]: state.counters[name] + 1 }
})

const withSlots = (state: RegistryState, slots: BackendSlots<PendingLaunch, Backend>): RegistryState => ({
  ...state,
  closed: slots.closed,
  slots: slots.slots,
  budget: slots.budget
})

const withoutSlot = (state: RegistryState, key: string): RegistryState => {
  const slots = new Map(state.slots)
  slots.delete(key)
  return { ...state, slots }
}

const withRetiring = (state: RegistryState, instance: string, entry: Retiring | undefined): RegistryState => {
  const retiring = new Map(state.retiring)
  if (entry === undefined) retiring.delete(instance)
  else retiring.set(instance, entry)
  return { ...state, retiring }
}

const withLastError = (state: RegistryState, key: string, message: string): RegistryState => {
  const lastErrors = new Map(state.lastErrors)
  lastErrors.delete(key)
  lastErrors.set(key, message)
  for (const oldest of lastErrors.keys()) {
    if (lastErrors.size <= rememberedErrors) break
    lastErrors.delete(oldest)
  }
  return { ...state, lastErrors }
}

const holds = (state: RegistryState, launch: PendingLaunch): boolean => {
  const slot = state.slots.get(launch.key)
  return slot?._tag === "Starting" && slot.launch.result === launch.result
}

const counted: Partial<Record<AcquireDecision<PendingLaunch, Backend>["_tag"], keyof RegistryCounters>> = {
  Wait: "coalescedWaits",
  Launch: "launches",
  BudgetSpent: "budgetRefusals"
}

/** An acquire's decision, and its key's last error at that moment (a spent budget's refusal names it). */
export interface AcquireStep {
  readonly decision: AcquireDecision<PendingLaunch, Backend>
  readonly lastError: string | undefined
}

/** The policy's decision on an acquire, counted. */
export const decideAcquire = (
  policy: BackendSlotPolicy,
  state: RegistryState,
  event: Acquire<PendingLaunch>,
  now: number
): readonly [AcquireStep, RegistryState] => {
  const step = acquire(policy, state, event, now)
  const next = withSlots(state, step.state)
  const counter = counted[step.decision._tag]
  return [
    { decision: step.decision, lastError: state.lastErrors.get(event.key) },
    counter === undefined ? next : count(next, counter)
  ]
}

/** `backend`'s endpoint accepted a connection at `now`. */
export const markVerified = (state: RegistryState, key: string, backend: Backend, now: number): RegistryState =>
  withSlots(state, verified(state, { key, backend }, now))

/** Takes `backend` out of service if it is still its key's live backend; true when it was. */
export const retire = (state: RegistryState, backend: Backend, reason: string, now: number): readonly [boolean, RegistryState] => {
  const step = dead(state, { key: backend.key, backend })
  if (step.decision._tag === "Stale") return [false, state]
  const next = withRetiring(withSlots(state, step.state), backend.instance, { backend, lastHelloAt: step.decision.lastHelloAt, reason })
  return [true, count(withLastError(next, backend.key, `${reason} (at ${iso(now)})`), "pruned")]
}

/** A stopped backend is forgotten. */
export const forgetRetired = (state: RegistryState, backend: Backend): RegistryState =>
  withRetiring(state, backend.instance, undefined)

/** Records the pid or endpoint a launch got, while its slot still holds it. */
export const updateLaunch = (
  state: RegistryState,
  launch: PendingLaunch,
  patch: Partial<Pick<PendingLaunch, "pid" | "endpoint">>
): RegistryState => {
  const slot = state.slots.get(launch.key)
  if (slot?._tag !== "Starting" || slot.launch.result !== launch.result) return state
  const slots = new Map(state.slots)
  slots.set(launch.key, { _tag: "Starting", launch: { ...slot.launch, ...patch } })
  return { ...state, slots }
}

/** The launch's backend became ready at `now`: live, unless the registry closed or dropped the launch. */
export const registerBackend = (
  state: RegistryState,
  launch: PendingLaunch,
  backend: Backend,
  idleExitMs: number | undefined,
  now: number
): readonly [boolean, RegistryState] => {
  if (state.closed || !holds(state, launch)) return [false, state]
  const live: Live<Backend> = { _tag: "Live", backend, verifiedAt: now, lastHelloAt: now, idleExitMs }
  const slots = new Map(state.slots)
  slots.set(launch.key, live)
  return [true, { ...state, slots }]
}

/** The launch ended without a backend: its slot is freed and `message` remembered for its key. */
export const recordLaunchFailure = (state: RegistryState, launch: PendingLaunch, message: string): RegistryState =>
  count(withLastError(holds(state, launch) ? withoutSlot(state, launch.key) : state, launch.key, message), "launchFailures")

/** Retires every live backend whose idle bound has passed at `now`; answers them. */
export const takeIdle = (state: RegistryState, now: number): readonly [ReadonlyArray<Backend>, RegistryState] => {
  let next = state
  const picked: Array<Backend> = []
  for (const slot of state.slots.values()) {
    if (slot._tag !== "Live" || slot.idleExitMs === undefined || now - slot.lastHelloAt < slot.idleExitMs) continue
    picked.push(slot.backend)
    next = withRetiring(withoutSlot(next, slot.backend.key), slot.backend.instance, {
      backend: slot.backend,
      lastHelloAt: slot.lastHelloAt,
      reason: `idle for ${slot.idleExitMs / 1000} s (idle_exit_sec)`
    })
    next = count(next, "idleExits")
  }
  return [picked, next]
}

/** Launches in progress. */
export const pendingLaunches = (state: RegistryState): ReadonlyArray<PendingLaunch> =>
  [...state.slots.values()].flatMap((slot) => (slot._tag === "Starting" ? [slot.launch] : []))

/** Retires every live backend; answers every backend now being stopped. */
export const retireAll = (state: RegistryState): readonly [ReadonlyArray<Retiring>, RegistryState] => {
  let next = state
  for (const slot of state.slots.values()) {
    if (slot._tag !== "Live") continue
    next = withRetiring(withoutSlot(next, slot.backend.key), slot.backend.instance, {
      backend: slot.backend,
      lastHelloAt: slot.lastHelloAt,
      reason: "stopped with all backends"
    })
  }
  return [[...next.retiring.values()], next]
}

/** No acquire is accepted any more. */
export const close = (state: RegistryState): RegistryState => ({ ...state, closed: true })
