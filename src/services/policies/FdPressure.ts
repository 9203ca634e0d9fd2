/**
 * fd-pressure hysteresis: when the broker runs short of file descriptors it demotes itself (hellos
 * are answered `overloaded`, admin still answers) and recovers only after a streak of healthy
 * accepts with open fds below a low watermark. Pure: observations are passed in as events.
 */

/** Tunables of the fd guard. */
export interface FdPressurePolicy {
  /** Fraction of the soft `RLIMIT_NOFILE` at or above which the broker demotes itself (0..1]. */
  readonly highWatermark: number
  /** Fraction of the soft limit below which an accept counts as healthy (≤ `highWatermark`). */
  readonly lowWatermark: number
  /** Consecutive healthy accepts that end a demotion (a positive integer). */
  readonly recoveryStreak: number
  /** What a demoted broker tells clients to wait before retrying a hello. */
  readonly retryAfterMs: number
}

/** Demote at 90% of the soft limit, recover after 32 healthy accepts below 75%, retry after 1 s. */
export const defaultFdPressurePolicy: FdPressurePolicy = {
  highWatermark: 0.9,
  lowWatermark: 0.75,
  recoveryStreak: 32,
  retryAfterMs: 1_000
}

/** Immutable state of the guard. */
export interface FdPressureState {
  readonly demoted: boolean
  /** Healthy accepts in a row since the demotion (0 when not demoted). */
  readonly healthyStreak: number
  /** Times the broker demoted / recovered itself. */
  readonly demotions: number
  readonly recoveries: number
  /** Why the broker was last demoted, for the admin snapshot; null before the first demotion. */
  readonly lastReason: string | null
}

/** A broker that has never been short of descriptors. */
export const initialFdPressureState: FdPressureState = {
  demoted: false,
  healthyStreak: 0,
  demotions: 0,
  recoveries: 0,
  lastReason: null
}

/** Open descriptors of the process and its soft limit (a limit of 0 or Infinity disables the watermarks). */
export interface FdUsage {
  readonly openFds: number
  readonly softLimit: number
}

/** What the guard observes. */
export type FdPressureEvent =
  /** `accept` failed; `code` is the errno name (`EMFILE`, `ENFILE`, `ECONNABORTED`, …). */
  | { readonly _tag: "AcceptFailed"; readonly code: string }
  /** A connection was accepted; the fd usage right after it. */
  | ({ readonly _tag: "Accepted" } & FdUsage)
  /** A periodic sample of fd usage, with no accept attempted. */
  | ({ readonly _tag: "Sampled" } & FdUsage)

/** What the event changed. */
export type FdPressureTransition = "demoted" | "recovered" | "unchanged"

/** Error codes of an accept that failed for lack of descriptors. */
export const descriptorExhaustionCodes: ReadonlyArray<string> = ["EMFILE", "ENFILE"]

const watermarksApply = (usage: FdUsage): boolean => Number.isFinite(usage.softLimit) && usage.softLimit > 0

const aboveHigh = (policy: FdPressurePolicy, usage: FdUsage): boolean =>
  watermarksApply(usage) && usage.openFds >= policy.highWatermark * usage.softLimit

const belowLow = (policy: FdPressurePolicy, usage: FdUsage): boolean =>
  !watermarksApply(usage) || usage.openFds < policy.lowWatermark * usage.softLimit

const demote = (state: FdPressureState, reason: string): { state: FdPressureState; transition: FdPressureTransition } =>
  state.demoted
    ? { state: { ...state, healthyStreak: 0, lastReason: reason }, transition: "unchanged" }
    : {
      state: { ...state, demoted: true, healthyStreak: 0, demotions: state.demotions + 1, lastReason: reason },
      transition: "demoted"
    }

const percent = (usage: FdUsage): string => `${usage.openFds} of ${usage.softLimit} descriptors open`

/** Feeds one observation to the guard. */
export const step = (
  policy: FdPressurePolicy,
  state: FdPressureState,
  event: FdPressureEvent
): { readonly state: FdPressureState; readonly transition: FdPressureTransition } => {
  switch (event._tag) {
    case "AcceptFailed":
      if (descriptorExhaustionCodes.includes(event.code)) return demote(state, `accept failed with ${event.code}`)
      return { state, transition: "unchanged" }
    case "Sampled":
    case "Accepted": {
      if (aboveHigh(policy, event)) {
        return demote(state, `${percent(event)} (high watermark ${Math.round(policy.highWatermark * 100)}%)`)
      }
      if (!state.demoted) return { state, transition: "unchanged" }
      if (!belowLow(policy, event)) return { state: { ...state, healthyStreak: 0 }, transition: "unchanged" }
      // A sample below the low watermark neither breaks nor extends the streak: only accepts prove health.
      if (event._tag === "Sampled") return { state, transition: "unchanged" }
      const healthyStreak = state.healthyStreak + 1
      if (healthyStreak < policy.recoveryStreak) return { state: { ...state, healthyStreak }, transition: "unchanged" }
      return {
        state: { ...state, demoted: false, healthyStreak: 0, recoveries: state.recoveries + 1 },
        transition: "recovered"
      }
    }
  }
}
