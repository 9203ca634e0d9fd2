/**
 * Hello rate limit: a token bucket per peer key (a uid, a pid). Pure: time is passed in as epoch
 * millis. A bucket refills at `ratePerSec` up to `burst`; a full bucket is forgotten, so the state
 * holds only peers that spent tokens recently.
 */

/** Tunables of the rate limit. */
export interface RateLimitPolicy {
  /** Tokens added per second (positive). */
  readonly ratePerSec: number
  /** Bucket size: hellos a quiet peer may send at once (a positive integer). */
  readonly burst: number
}

/** 50 hellos per second, bursts of 100. */
export const defaultRateLimitPolicy: RateLimitPolicy = { ratePerSec: 50, burst: 100 }

/** One peer's bucket: tokens left at `updatedAt`. */
export interface TokenBucket {
  readonly tokens: number
  readonly updatedAt: number
}

/** Buckets of the peers that are not full. */
export type RateLimitState = ReadonlyMap<string, TokenBucket>

/** No peer has spent a token. */
export const initialRateLimitState: RateLimitState = new Map()

/** Whether a hello may proceed, and if not, in how many milliseconds the next token arrives. */
export type RateDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number }

/** Tokens of `key` at `now` (a peer never seen, or forgotten, has a full bucket). */
export const tokensAt = (policy: RateLimitPolicy, state: RateLimitState, key: string, now: number): number => {
  const bucket = state.get(key)
  if (bucket === undefined) return policy.burst
  // A clock that stepped back refills nothing rather than taking tokens away.
  const elapsedMs = Math.max(0, now - bucket.updatedAt)
  return Math.min(policy.burst, bucket.tokens + (elapsedMs * policy.ratePerSec) / 1000)
}

/** Spends one token of `key` at `now` if there is one. */
export const take = (
  policy: RateLimitPolicy,
  state: RateLimitState,
  key: string,
  now: number
): { readonly state: RateLimitState; readonly decision: RateDecision } => {
  const next = new Map<string, TokenBucket>()
  for (const other of state.keys()) {
    const tokens = tokensAt(policy, state, other, now)
    if (tokens < policy.burst) next.set(other, { tokens, updatedAt: Math.max(now, state.get(other)?.updatedAt ?? now) })
  }
  const tokens = tokensAt(policy, state, key, now)
  if (tokens < 1) {
    const retryAfterMs = Math.max(1, Math.ceil(((1 - tokens) * 1000) / policy.ratePerSec))
    return { state: next, decision: { allowed: false, retryAfterMs } }
  }
  next.set(key, { tokens: tokens - 1, updatedAt: Math.max(now, state.get(key)?.updatedAt ?? now) })
  return { state: next, decision: { allowed: true } }
}
