/**
 * BackendRegistry: the broker's backends, launched on demand and keyed by service, version, the
 * executable's sha256 and the launch config's fingerprint. The shape, its errors and its views.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { Endpoint } from "./BrokerProtocol.js"

/** The broker error codes an acquire can fail with. */
export const BackendErrorCode = Schema.Literal("unknown_service", "version_blocked", "launch_failed")
/** The broker error codes an acquire can fail with. */
export type BackendErrorCode = typeof BackendErrorCode.Type

/** An acquire that failed: `code` and `message` go into the broker's `error` reply as they are. */
export class BackendError extends Schema.TaggedError<BackendError>()("BackendError", {
  code: BackendErrorCode,
  service: Schema.String,
  message: Schema.String,
  /** Set when the spawn budget of the key is spent: when a launch will be allowed again (the reply's `retry_after_ms`). */
  retryAfterMs: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
}) {}

/** A `launch_failed` error of `service`: the code of every failure after the definition was read. */
export const launchFailed = (service: string, message: string): BackendError =>
  new BackendError({ code: "launch_failed", service, message })

/** A backend for a hello. `launched` is true only for the acquire whose miss started the launch. */
export interface AcquiredBackend {
  readonly service: string
  readonly version: string
  readonly endpoint: Endpoint
  readonly instance: string
  readonly launched: boolean
  readonly pid: number
  readonly key: string
}

/** One backend in the admin snapshot; times are ISO-8601 strings from the Effect `Clock`. */
export interface BackendSnapshot {
  readonly service: string
  readonly version: string
  readonly instance: string
  readonly key: string
  readonly pid: number | null
  readonly endpoint: Endpoint | null
  readonly state: "starting" | "live" | "stopping"
  readonly started_at: string
  readonly last_hello_at: string | null
  /** Why it is stopping; otherwise the last failure seen for its key (a failed launch, a death). */
  readonly last_error: string | null
}

/** Monotonic counters for the admin snapshot and metrics. */
export interface RegistryCounters {
  /** Launch attempts started (each one spends the key's spawn budget). */
  readonly launches: number
  /** Acquires that found a launch in progress and waited on it. */
  readonly coalescedWaits: number
  /** Launch attempts that ended without a ready backend. */
  readonly launchFailures: number
  /** Acquires refused because the key's spawn budget was spent. */
  readonly budgetRefusals: number
  /** Backends removed because their process exited or their endpoint stopped accepting connections. */
  readonly pruned: number
  /** Backends stopped after `idle_exit_sec` without an acquire. */
  readonly idleExits: number
}

/** Spawn budget of one key, for the admin snapshot. */
export interface SpawnBudgetEntry {
  readonly key: string
  readonly used: number
  /** 0 while a launch is allowed. */
  readonly retry_after_ms: number
  readonly last_error: string | null
}

/** The broker's backends. */
export interface BackendRegistryShape {
  /** A live backend of `service` at `version` (or its default), launching one on a miss. */
  readonly acquire: (service: string, version?: string) => Effect.Effect<AcquiredBackend, BackendError>
  /** Every backend known: starting, live and stopping. */
  readonly snapshot: Effect.Effect<ReadonlyArray<BackendSnapshot>>
  /** Counters since the registry was made. */
  readonly counters: Effect.Effect<RegistryCounters>
  /** Keys with launch attempts inside the spawn-budget window. */
  readonly spawnBudgets: Effect.Effect<ReadonlyArray<SpawnBudgetEntry>>
  /** Cancels launches in progress and stops every backend (TERM → KILL), removing their socket files. */
  readonly stopAll: Effect.Effect<void>
}

/** The broker's backend registry; its scope's end stops every backend it launched. */
export class BackendRegistry extends Context.Tag("corral/BackendRegistry")<BackendRegistry, BackendRegistryShape>() {}
