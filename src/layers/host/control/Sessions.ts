/**
 * Status-page logins: sessions (random 32-byte ids, each with its own random 32-byte page key that only the
 * page holds, at most `maxSessions`, 12 h each) and one-time login
 * codes (60 s, one use), kept in one `SubscriptionRef` so every check and update is atomic and a long answer
 * opened by a session can end when the session does. Nothing is written to disk: a host restart logs
 * everyone out, as a new token does.
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import { Clock, Effect, Option, Stream, SubscriptionRef } from "effect"

/** How long a session lasts. */
export const sessionLifetimeMs = 12 * 60 * 60 * 1000
/** How long a login code may be used. */
export const loginCodeLifetimeMs = 60_000
/** Sessions kept at once; a new one past this ends the oldest. */
export const maxSessions = 64
/** Unused login codes kept at once; a new one past this voids the oldest. */
export const maxLoginCodes = 16

/**
 * A new session: `id` goes in the cookie; `key` goes only to the page that logged in, which sends it back
 * with every request. A browser sends the cookie to every port of the host, so the cookie alone could be
 * replayed by another local user's server; the key it never sees.
 */
export interface OpenedSession {
  readonly id: string
  readonly key: string
}

/** The logins of one host. */
export interface SessionStore {
  /** Opens a session and returns its id and page key. */
  readonly open: Effect.Effect<OpenedSession>
  /** Whether `id` names a session that has not expired and whose page key is `key` (compared in constant time). */
  readonly isOpen: (id: string, key: string) => Effect.Effect<boolean>
  readonly close: (id: string) => Effect.Effect<void>
  /** Completes when session `id` ends: closed, expired, or pushed out by newer ones (at once if it is not open). */
  readonly ended: (id: string) => Effect.Effect<void>
  /** A new one-time login code and when it expires (epoch ms). */
  readonly issueCode: Effect.Effect<{ readonly code: string; readonly expiresAtMs: number }>
  /** Uses `code` up and opens a session for it; none when it is unknown, used or expired. */
  readonly redeem: (code: string) => Effect.Effect<Option.Option<OpenedSession>>
}

interface Session {
  /** Epoch ms. */
  readonly expiresAt: number
  readonly key: string
}

interface Logins {
  /** Session id → its expiry and key, oldest first. */
  readonly sessions: ReadonlyMap<string, Session>
  /** Login code → expiry (epoch ms), oldest first. */
  readonly codes: ReadonlyMap<string, number>
}

const randomId = (bytes: number): string => randomBytes(bytes).toString("base64url")

const sameKey = (given: string, key: string): boolean => {
  const a = Buffer.from(given)
  const b = Buffer.from(key)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** `entries` without expired ones, and with room for one more under `max` (the oldest go first). */
const pruned = <V>(entries: ReadonlyMap<string, V>, expiryOf: (value: V) => number, now: number, max: number): Map<string, V> => {
  const kept = new Map([...entries].filter(([, value]) => expiryOf(value) > now))
  for (const key of kept.keys()) {
    if (kept.size < max) break
    kept.delete(key)
  }
  return kept
}

/** An empty store. */
export const makeSessionStore: Effect.Effect<SessionStore> = Effect.map(
  SubscriptionRef.make<Logins>({ sessions: new Map(), codes: new Map() }),
  (logins): SessionStore => {
    const openAt = (now: number) =>
      SubscriptionRef.modify(logins, (state): [OpenedSession, Logins] => {
        const opened = { id: randomId(32), key: randomId(32) }
        const sessions = pruned(state.sessions, (session) => session.expiresAt, now, maxSessions)
        sessions.set(opened.id, { expiresAt: now + sessionLifetimeMs, key: opened.key })
        return [opened, { ...state, sessions }]
      })
    return {
      open: Effect.flatMap(Clock.currentTimeMillis, openAt),
      isOpen: (id, key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(SubscriptionRef.get(logins), (state) => {
            const session = state.sessions.get(id)
            return session !== undefined && session.expiresAt > now && sameKey(key, session.key)
          })),
      close: (id) =>
        SubscriptionRef.update(logins, (state) => {
          const sessions = new Map(state.sessions)
          sessions.delete(id)
          return { ...state, sessions }
        }),
      ended: (id) =>
        Effect.gen(function*() {
          const session = (yield* SubscriptionRef.get(logins)).sessions.get(id)
          if (session === undefined) return
          const expiresAt = session.expiresAt
          const now = yield* Clock.currentTimeMillis
          // The changes start with the state now, so a close between the read above and here is seen.
          const removed = Stream.runDrain(Stream.takeUntil(logins.changes, (state) => !state.sessions.has(id)))
          yield* Effect.race(removed, Effect.sleep(Math.max(0, expiresAt - now)))
        }),
      issueCode: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        SubscriptionRef.modify(logins, (state) => {
          const code = randomId(24)
          const expiresAtMs = now + loginCodeLifetimeMs
          const codes = pruned(state.codes, (expiresAt) => expiresAt, now, maxLoginCodes)
          codes.set(code, expiresAtMs)
          return [{ code, expiresAtMs }, { ...state, codes }]
        })),
      redeem: (code) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          SubscriptionRef.modify(logins, (state): [boolean, Logins] => {
            const valid = (state.codes.get(code) ?? 0) > now
            // Used or not, a presented code is gone: a second try with it fails.
            const codes = new Map(state.codes)
            codes.delete(code)
            return [valid, { ...state, codes }]
          }).pipe(Effect.flatMap((valid) => valid ? Effect.map(openAt(now), Option.some) : Effect.succeed(Option.none<OpenedSession>())))
        )
    }
  }
)
