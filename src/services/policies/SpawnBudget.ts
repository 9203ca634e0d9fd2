/**
 * Spawn budget: how many backend launches one registry key may attempt per sliding window. Pure:
 * time is passed in as epoch millis. Every attempt counts, successful or not, so a backend that
 * keeps crashing (or never becomes ready) is refused with a `retryAfterMs` instead of relaunched hot.
 */

/** Tunables of the spawn budget. */
export interface SpawnBudgetPolicy {
  /** Launch attempts allowed per key inside the window (a positive integer). */
  readonly maxLaunches: number
  /** Length of the sliding window in milliseconds (positive). */
  readonly windowMs: number
}

/** Three launches per 30 s per key. */
export const defaultSpawnBudgetPolicy: SpawnBudgetPolicy = { maxLaunches: 3, windowMs: 30_000 }

/** The policy and, per key, the launch attempts inside the window (oldest first). */
export interface SpawnBudgetState {
  readonly policy: SpawnBudgetPolicy
  readonly attempts: ReadonlyMap<string, ReadonlyArray<number>>
}

/** A fresh budget under `policy`. */
export const makeSpawnBudget = (policy: SpawnBudgetPolicy = defaultSpawnBudgetPolicy): SpawnBudgetState => ({
  policy,
  attempts: new Map()
})

/** Whether a launch may start now, and if not, in how many milliseconds one will be allowed. */
export type SpawnDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number }

/** Attempts used and the wait before the next one is allowed (0 when allowed now), for status. */
export interface SpawnBudgetUsage {
  readonly used: number
  readonly retryAfterMs: number
}

const inWindow = (state: SpawnBudgetState, key: string, now: number): ReadonlyArray<number> =>
  (state.attempts.get(key) ?? []).filter((at) => now - at < state.policy.windowMs)

const waitFor = (state: SpawnBudgetState, recent: ReadonlyArray<number>, now: number): number => {
  if (recent.length < state.policy.maxLaunches) return 0
  // The attempt that must leave the window before one more fits.
  const blocking = recent[recent.length - state.policy.maxLaunches] ?? now
  return Math.max(1, blocking + state.policy.windowMs - now)
}

/** Usage of `key` at `now`. */
export const usage = (state: SpawnBudgetState, key: string, now: number): SpawnBudgetUsage => {
  const recent = inWindow(state, key, now)
  return { used: recent.length, retryAfterMs: waitFor(state, recent, now) }
}

/** Usage of every key that has attempts inside the window at `now`, keys in insertion order. */
export const usageByKey = (state: SpawnBudgetState, now: number): ReadonlyArray<SpawnBudgetUsage & { readonly key: string }> =>
  [...state.attempts.keys()]
    .map((key) => ({ key, ...usage(state, key, now) }))
    .filter((entry) => entry.used > 0)

/**
 * Asks to launch `key` at `now`: allowed (and counted) while fewer than `maxLaunches` attempts lie
 * inside the window; otherwise refused with the wait until the oldest counted one leaves it. Keys
 * whose attempts have all left the window are forgotten.
 */
export const tryLaunch = (
  state: SpawnBudgetState,
  key: string,
  now: number
): { readonly state: SpawnBudgetState; readonly decision: SpawnDecision } => {
  const attempts = new Map<string, ReadonlyArray<number>>()
  for (const other of state.attempts.keys()) {
    const recent = inWindow(state, other, now)
    if (recent.length > 0) attempts.set(other, recent)
  }
  const recent = attempts.get(key) ?? []
  const retryAfterMs = waitFor(state, recent, now)
  if (retryAfterMs > 0) {
    return { state: { policy: state.policy, attempts }, decision: { allowed: false, retryAfterMs } }
  }
  attempts.set(key, [...recent, now])
  return { state: { policy: state.policy, attempts }, decision: { allowed: true } }
}
