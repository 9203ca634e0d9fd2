/**
 * The registry's state as the admin snapshot shows it: every backend (starting, live, stopping)
 * and the spawn budget of every key with launches inside the window.
 */
import type { BackendSnapshot, SpawnBudgetEntry } from "../../../services/broker/BackendRegistry.js"
import { usageByKey } from "../../../services/policies/SpawnBudget.js"
import { iso, type RegistryState } from "./RegistryState.js"

/** Launches in progress and live backends, then the backends being stopped. */
export const backendsOf = (state: RegistryState): ReadonlyArray<BackendSnapshot> => [
  ...[...state.slots.values()].map((slot): BackendSnapshot =>
    slot._tag === "Starting"
      ? {
        service: slot.launch.service,
        version: slot.launch.version,
        instance: slot.launch.instance,
        key: slot.launch.key,
        pid: slot.launch.pid,
        endpoint: slot.launch.endpoint,
        state: "starting",
        started_at: iso(slot.launch.startedAt),
        last_hello_at: iso(slot.launch.startedAt),
        last_error: state.lastErrors.get(slot.launch.key) ?? null
      }
      : {
        service: slot.backend.service,
        version: slot.backend.version,
        instance: slot.backend.instance,
        key: slot.backend.key,
        pid: slot.backend.pid,
        endpoint: slot.backend.endpoint,
        state: "live",
        started_at: iso(slot.backend.startedAt),
        last_hello_at: iso(slot.lastHelloAt),
        last_error: state.lastErrors.get(slot.backend.key) ?? null
      }
  ),
  ...[...state.retiring.values()].map(({ backend, lastHelloAt, reason }): BackendSnapshot => ({
    service: backend.service,
    version: backend.version,
    instance: backend.instance,
    key: backend.key,
    pid: backend.pid,
    endpoint: backend.endpoint,
    state: "stopping",
    started_at: iso(backend.startedAt),
    last_hello_at: lastHelloAt === null ? null : iso(lastHelloAt),
    last_error: reason
  }))
]

/** Spawn budgets at `now`, with each key's last error. */
export const spawnBudgetsOf = (state: RegistryState, now: number): ReadonlyArray<SpawnBudgetEntry> =>
  usageByKey(state.budget, now).map(({ key, retryAfterMs, used }) => ({
    key,
    used,
    retry_after_ms: retryAfterMs,
    last_error: state.lastErrors.get(key) ?? null
  }))
