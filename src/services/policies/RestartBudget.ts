/**
 * Restart budget: whether a component whose run ended is restarted, and after how long. Pure: time and
 * the jitter draw are passed in. `max_restarts` per sliding `window_sec`, exponential backoff from
 * `backoff_initial_ms` capped at `backoff_max_ms` with up to 20% jitter, and a budget forgotten
 * once the component has stayed up for `stable_after_sec`. A clean exit is restarted only under `always`.
 */

/** The knobs, as in a component's `restart_policy`. */
export interface RestartBudgetPolicy {
  readonly mode: "never" | "on_failure" | "always"
  readonly max_restarts: number
  readonly window_sec: number
  readonly backoff_initial_ms: number
  readonly backoff_max_ms: number
  readonly stable_after_sec: number
}

/** Restarts spent inside the window, oldest first, and when the current run became ready. */
export interface RestartBudgetState {
  readonly restarts: ReadonlyArray<number>
  readonly upSince: number | null
}

/** A fresh budget. */
export const initialRestartBudget: RestartBudgetState = { restarts: [], upSince: null }

/** What to do after a run ended: restart after a delay, give up (`failed`), or stay stopped (a clean exit). */
export type RestartDecision =
  | { readonly _tag: "Restart"; readonly delayMs: number; readonly attempt: number }
  | { readonly _tag: "GiveUp"; readonly reason: string }
  | { readonly _tag: "Stay"; readonly reason: string }

/**
 * How a run ended: its process crashed after it was ready (`crashed`: a non-zero code or a signal) or
 * before (`crashed_starting`), exited with code 0 (`exited_cleanly`), or was stopped by the host after
 * `restart_after_unhealthy` failed health checks (`unhealthy`).
 */
export type RunEnding = "crashed" | "crashed_starting" | "exited_cleanly" | "unhealthy"

/** The component became ready at `now`. */
export const markUp = (state: RestartBudgetState, now: number): RestartBudgetState => ({ ...state, upSince: now })

/** Restarts used and left right now (for status). */
export const budgetUsage = (
  policy: RestartBudgetPolicy,
  state: RestartBudgetState,
  now: number
): { readonly used: number; readonly left: number } => {
  if (policy.mode === "never") return { used: 0, left: 0 }
  const used = inWindow(policy, state, now).length
  return { used, left: Math.max(0, policy.max_restarts - used) }
}

const inWindow = (policy: RestartBudgetPolicy, state: RestartBudgetState, now: number): ReadonlyArray<number> =>
  state.restarts.filter((at) => now - at < policy.window_sec * 1000)

/**
 * Decides after a run ended at `now` (`jitter`: a draw from [0, 1)): a clean exit is restarted only under
 * `always` (else the component stays stopped); every other ending is a failure (see `onFailure`).
 */
export const afterRun = (
  policy: RestartBudgetPolicy,
  state: RestartBudgetState,
  ending: RunEnding,
  now: number,
  jitter: number
): { readonly state: RestartBudgetState; readonly decision: RestartDecision } =>
  ending === "exited_cleanly" && policy.mode !== "always"
    ? {
      state: { ...state, upSince: null },
      decision: { _tag: "Stay", reason: `restart_policy.mode ${policy.mode} does not restart a clean exit ("always" does)` }
    }
    : onFailure(policy, state, now, jitter)

/** Decides after a failure at `now`; `jitter` is a draw from [0, 1). */
export const onFailure = (
  policy: RestartBudgetPolicy,
  state: RestartBudgetState,
  now: number,
  jitter: number
): { readonly state: RestartBudgetState; readonly decision: RestartDecision } => {
  if (policy.mode === "never") {
    return { state: { ...state, upSince: null }, decision: { _tag: "GiveUp", reason: "restart policy is never" } }
  }
  const stable = state.upSince !== null && now - state.upSince >= policy.stable_after_sec * 1000
  const recent = stable ? [] : inWindow(policy, state, now)
  if (recent.length >= policy.max_restarts) {
    return {
      state: { restarts: recent, upSince: null },
      decision: {
        _tag: "GiveUp",
        reason: `restart budget spent: ${recent.length} restarts within ${policy.window_sec} s (max ${policy.max_restarts})`
      }
    }
  }
  const attempt = recent.length + 1
  const base = Math.min(policy.backoff_max_ms, policy.backoff_initial_ms * 2 ** (attempt - 1))
  const delayMs = Math.min(policy.backoff_max_ms, Math.round(base * (1 + 0.2 * jitter)))
  return { state: { restarts: [...recent, now], upSince: null }, decision: { _tag: "Restart", delayMs, attempt } }
}
