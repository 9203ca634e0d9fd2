/**
 * Route alarm policy: a pure state machine deciding when repeated defects or timeouts on one route
 * raise an alarm and when the route has shown it recovered. Time is passed in as epoch millis.
 */

/** Tunables of the route alarm. */
export interface RouteAlarmPolicy {
  /** Failures inside the window that raise the alarm (a positive integer). */
  readonly threshold: number
  /** Length of the sliding failure window in milliseconds (positive). */
  readonly windowMs: number
  /** Consecutive successes that clear a raised alarm (a positive integer). */
  readonly recoverySuccesses: number
}

/** Five failures within a minute raise the alarm; three consecutive successes clear it. */
export const defaultRouteAlarmPolicy: RouteAlarmPolicy = {
  threshold: 5,
  windowMs: 60_000,
  recoverySuccesses: 3
}

/** What went wrong on a route: a defect in its handler, or a handler that ran past its timeout. */
export type RouteFailureKind = "defect" | "timeout"

/** The most recent failure seen on a route. */
export interface RouteFailure {
  readonly at: number
  readonly kind: RouteFailureKind
  readonly message: string
}

/** Immutable alarm state of one route. */
export interface RouteAlarmState {
  /** Failure timestamps inside the window, oldest first, at most `threshold` of them. */
  readonly recentFailures: ReadonlyArray<number>
  readonly alarmed: boolean
  readonly raisedAt: number | null
  /** Consecutive successes since the alarm was raised or since the last failure; 0 when not alarmed. */
  readonly successStreak: number
  readonly lastFailure: RouteFailure | null
  readonly failuresTotal: number
}

/** A route that has seen no failures. */
export const initialRouteAlarmState: RouteAlarmState = {
  recentFailures: [],
  alarmed: false,
  raisedAt: null,
  successStreak: 0,
  lastFailure: null,
  failuresTotal: 0
}

/** A request on the route died with a defect or ran past its timeout. */
export interface Failure {
  readonly _tag: "Failure"
  readonly kind: RouteFailureKind
  readonly at: number
  readonly message: string
}

/** A request on the route completed. */
export interface Success {
  readonly _tag: "Success"
  readonly at: number
}

/** Everything the route alarm reacts to. */
export type RouteAlarmEvent = Failure | Success

/** Builds a `Failure` event. */
export const Failure = (kind: RouteFailureKind, at: number, message: string): Failure => ({
  _tag: "Failure",
  kind,
  at,
  message
})

/** Builds a `Success` event. */
export const Success = (at: number): Success => ({ _tag: "Success", at })

/** What a step did to the alarm: raised it, cleared it, or neither. */
export type RouteAlarmTransition = "raised" | "cleared" | "none"

/** The state after an event, and whether the alarm changed. */
export interface RouteAlarmStep {
  readonly state: RouteAlarmState
  readonly transition: RouteAlarmTransition
}

/**
 * Advances one route's alarm by one event.
 * - A failure raises the alarm when the failures in `(at - windowMs, at]` reach `threshold`; while
 *   alarmed it resets the success streak and never raises again.
 * - `recoverySuccesses` consecutive successes clear a raised alarm and forget the failures that raised
 *   it, so only a fresh burst of `threshold` failures raises it again.
 * - A success on a route that is not alarmed changes nothing and returns the same state object.
 * - Time alone never clears an alarm: an alarmed route without traffic stays alarmed, because nobody
 *   has shown that it recovered.
 */
export const step = (
  policy: RouteAlarmPolicy,
  state: RouteAlarmState,
  event: RouteAlarmEvent
): RouteAlarmStep => {
  if (event._tag === "Success") {
    if (!state.alarmed) return { state, transition: "none" }
    const successStreak = state.successStreak + 1
    if (successStreak >= policy.recoverySuccesses) {
      return {
        state: { ...state, recentFailures: [], alarmed: false, raisedAt: null, successStreak: 0 },
        transition: "cleared"
      }
    }
    return { state: { ...state, successStreak }, transition: "none" }
  }

  const recentFailures = appendFailure(policy, state.recentFailures, event.at)
  const lastFailure: RouteFailure = { at: event.at, kind: event.kind, message: event.message }
  const failuresTotal = state.failuresTotal + 1
  if (state.alarmed) {
    return {
      state: { ...state, recentFailures, successStreak: 0, lastFailure, failuresTotal },
      transition: "none"
    }
  }
  if (recentFailures.length >= policy.threshold) {
    return {
      state: { recentFailures, alarmed: true, raisedAt: event.at, successStreak: 0, lastFailure, failuresTotal },
      transition: "raised"
    }
  }
  return { state: { ...state, recentFailures, lastFailure, failuresTotal }, transition: "none" }
}

/** Failures of the route inside `(now - windowMs, now]`, capped at `threshold` (older ones are not kept). */
export const failuresInWindow = (policy: RouteAlarmPolicy, state: RouteAlarmState, now: number): number => {
  const windowStart = now - policy.windowMs
  let count = 0
  for (const at of state.recentFailures) {
    if (at > windowStart && at <= now) count++
  }
  return count
}

/** Checks a policy, returning one message per bad field (empty when the policy is usable). */
export const routeAlarmPolicyProblems = (policy: RouteAlarmPolicy): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (!Number.isInteger(policy.threshold) || policy.threshold < 1) {
    problems.push(`threshold: expected a positive integer, got ${policy.threshold}`)
  }
  if (!Number.isFinite(policy.windowMs) || policy.windowMs <= 0) {
    problems.push(`windowMs: expected a positive number of milliseconds, got ${policy.windowMs}`)
  }
  if (!Number.isInteger(policy.recoverySuccesses) || policy.recoverySuccesses < 1) {
    problems.push(`recoverySuccesses: expected a positive integer, got ${policy.recoverySuccesses}`)
  }
  return problems
}

// Keeps the timestamps inside (at - windowMs, at] plus `at`, newest `threshold` only: that is all a
// raise decision needs, and it bounds the state of a route that fails on every request.
const appendFailure = (policy: RouteAlarmPolicy, failures: ReadonlyArray<number>, at: number): ReadonlyArray<number> => {
  const windowStart = at - policy.windowMs
  const kept = failures.filter((t) => t > windowStart && t <= at)
  kept.push(at)
  return kept.length > policy.threshold ? kept.slice(kept.length - policy.threshold) : kept
}
