/**
 * Route alarm policy: a pure state machine deciding when repeated defects or timeouts on one route
 * raise an alarm, and when it clears: the route has shown it recovered, or it has been quiet (no
 * failure) for a while. Time is passed in as epoch millis.
 */

/** Tunables of the route alarm. */
export interface RouteAlarmPolicy {
  /** Failures inside the window that raise the alarm (a positive integer). */
  readonly threshold: number
  /** Length of the sliding failure window in milliseconds (positive). */
  readonly windowMs: number
  /** Consecutive successes that clear a raised alarm (a positive integer). */
  readonly recoverySuccesses: number
  /** Time without a failure after which a raised alarm clears by itself, in milliseconds (positive). */
  readonly quietMs: number
}

/** Five failures within a minute raise the alarm; three consecutive successes or a quiet minute clear it. */
export const defaultRouteAlarmPolicy: RouteAlarmPolicy = {
  threshold: 5,
  windowMs: 60_000,
  recoverySuccesses: 3,
  quietMs: 60_000
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

/** Time has passed (a readiness check looks at the alarm): a quiet alarm clears. */
export interface Tick {
  readonly _tag: "Tick"
  readonly at: number
}

/** Everything the route alarm reacts to. */
export type RouteAlarmEvent = Failure | Success | Tick

/** Builds a `Failure` event. */
export const Failure = (kind: RouteFailureKind, at: number, message: string): Failure => ({
  _tag: "Failure",
  kind,
  at,
  message
})

/** Builds a `Success` event. */
export const Success = (at: number): Success => ({ _tag: "Success", at })

/** Builds a `Tick` event. */
export const Tick = (at: number): Tick => ({ _tag: "Tick", at })

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
 * - An alarm whose last failure is `quietMs` old or older clears on the next event (a `Tick` too),
 *   forgetting its failures as a recovery does: a route that can no longer succeed (nobody calls it
 *   any more) must not keep its server unready for good; a route that still fails keeps failing.
 */
export const step = (
  policy: RouteAlarmPolicy,
  before: RouteAlarmState,
  event: RouteAlarmEvent
): RouteAlarmStep => {
  const quiet = isQuiet(policy, before, event.at)
  const state = quiet ? cleared(before) : before
  const settled: RouteAlarmTransition = quiet ? "cleared" : "none"
  if (event._tag === "Tick") return { state, transition: settled }
  if (event._tag === "Success") {
    if (!state.alarmed) return { state, transition: settled }
    const successStreak = state.successStreak + 1
    if (successStreak >= policy.recoverySuccesses) return { state: cleared(state), transition: "cleared" }
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
  return { state: { ...state, recentFailures, lastFailure, failuresTotal }, transition: settled }
}

/** Whether `state` is alarmed and its last failure is at least `quietMs` before `now`. */
export const isQuiet = (policy: RouteAlarmPolicy, state: RouteAlarmState, now: number): boolean =>
  state.alarmed && state.lastFailure !== null && now - state.lastFailure.at >= policy.quietMs

// Not alarmed, and the failures that raised the alarm forgotten: only a fresh burst raises it again.
const cleared = (state: RouteAlarmState): RouteAlarmState => ({
  ...state,
  recentFailures: [],
  alarmed: false,
  raisedAt: null,
  successStreak: 0
})

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
  if (!Number.isFinite(policy.quietMs) || policy.quietMs <= 0) {
    problems.push(`quietMs: expected a positive number of milliseconds, got ${policy.quietMs}`)
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
