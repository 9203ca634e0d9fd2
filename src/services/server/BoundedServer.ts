/**
 * BoundedServer: one resource contract (connection permits, request permits, handler deadlines,
 * typed defects, drain, metrics) for HTTP handlers, mounted `HttpApp`s and raw connection handlers.
 */
import { Context, Effect, Schema } from "effect"
import { parseIssueLines } from "../system/ParseIssues.js"
import { AlarmedRoute } from "./RouteAlarms.js"

/** Configuration of a bounded server; every field has a default, so `{}` is a valid config. */
export const BoundedServerConfig = Schema.Struct({
  /** Names the server in logs and metric labels. */
  name: Schema.optionalWith(Schema.NonEmptyTrimmedString, { default: () => "server" }),
  host: Schema.optionalWith(Schema.NonEmptyTrimmedString, { default: () => "127.0.0.1" }),
  /** TCP port; 0 picks a free one. Ignored when `path` is set. */
  port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 0 }),
  /** Listen on this Unix socket path instead of host and port. */
  path: Schema.optional(Schema.NonEmptyTrimmedString),
  /** Open connections served at once; more get a fast 503 (or `rejectBytes`) and are closed. */
  maxConnections: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 32 }),
  /** Concurrent handler runs across keep-alive connections; default: `maxConnections`. */
  maxInFlight: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Absolute time to receive a request's headers (a trickling client does not extend it). */
  headersTimeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10_000 }),
  /** Idle time allowed on a keep-alive connection between requests. */
  idleTimeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5_000 }),
  /** Deadline of one handler run; past it the handler is interrupted and the client gets 504. */
  handlerTimeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 30_000 }),
  maxBodyBytes: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 1_048_576 }),
  /** Time in-flight work gets to finish on stop before it is interrupted. */
  shutdownGraceMs: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 5_000 }),
  /** Minimum time between two logged accept errors (libuv retries accepts by itself). */
  acceptErrorBackoffMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1_000 }),
  retryAfterSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 1 })
})

/** A decoded configuration, with `maxInFlight` resolved. */
export type BoundedServerConfig = Omit<typeof BoundedServerConfig.Type, "maxInFlight"> & {
  readonly maxInFlight: number
}

/** What a caller may pass: every field optional. */
export type BoundedServerConfigInput = typeof BoundedServerConfig.Encoded

/** A configuration that did not decode; `issues` name each field and what is wrong with it. */
export class BoundedServerConfigError extends Schema.TaggedError<BoundedServerConfigError>()(
  "BoundedServerConfigError",
  { source: Schema.String, issues: Schema.Array(Schema.String) }
) {
  override get message(): string {
    return `${this.source}: ${this.issues.join("; ")}`
  }
}

/** Decodes and validates a config; `source` names where it came from (a file, a flag set). */
export const decodeBoundedServerConfig = (
  input: unknown,
  source = "bounded server config"
): Effect.Effect<BoundedServerConfig, BoundedServerConfigError> =>
  Schema.decodeUnknown(BoundedServerConfig, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Effect.map((decoded) => ({ ...decoded, maxInFlight: decoded.maxInFlight ?? decoded.maxConnections })),
    Effect.mapError((error) =>
      new BoundedServerConfigError({
        source,
        issues: parseIssueLines(error)
      })
    )
  )

/** Binding the listener failed (port in use, permission, bad socket path). */
export class ServeError extends Schema.TaggedError<ServeError>()("ServeError", {
  server: Schema.String,
  address: Schema.String,
  message: Schema.String
}) {}

/** Where a server listens. */
export type BoundAddress =
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number; readonly url: string }
  | { readonly _tag: "Unix"; readonly path: string }

/** A handler run that did not produce its own response, as a value: logged, counted, answered. */
export class HandlerFailure extends Schema.TaggedError<HandlerFailure>()("HandlerFailure", {
  server: Schema.String,
  requestId: Schema.String,
  method: Schema.String,
  path: Schema.String,
  route: Schema.String,
  reason: Schema.Literal("defect", "failure", "timeout"),
  message: Schema.String
}) {}

/** The last error of a kind, kept for the snapshot. */
export const LastError = Schema.NullOr(Schema.Struct({ at: Schema.String, message: Schema.String }))

/** Typed snapshot of a server's counters (JSON field names follow the seed's metric names). */
export const ServerMetricsSnapshot = Schema.Struct({
  server: Schema.String,
  active_connections: Schema.Number,
  in_flight: Schema.Number,
  accepted_total: Schema.Number,
  rejected_over_capacity_total: Schema.Number,
  rejected_connections_total: Schema.Number,
  rejected_requests_total: Schema.Number,
  requests_total: Schema.Number,
  handler_errors_total: Schema.Number,
  handler_timeouts_total: Schema.Number,
  client_errors_total: Schema.Number,
  shutdown_drain_ms: Schema.NullOr(Schema.Number),
  last_accept_error: LastError,
  last_handler_error: LastError
})
/** Typed snapshot of a server's counters. */
export type ServerMetricsSnapshot = typeof ServerMetricsSnapshot.Type

/** Readiness as the server sees it: listening, not draining, no alarmed route. */
export const Readiness = Schema.Struct({
  ready: Schema.Boolean,
  draining: Schema.Boolean,
  alarmed_routes: Schema.Array(AlarmedRoute)
})
/** Readiness as the server sees it. */
export type Readiness = typeof Readiness.Type

/** A running bounded server. Its scope owns the listener; closing the scope drains it. */
export interface BoundedServerShape {
  readonly name: string
  readonly address: BoundAddress
  readonly config: BoundedServerConfig
  /** Counters, gauges and last errors as a typed snapshot. */
  readonly metrics: Effect.Effect<ServerMetricsSnapshot>
  /** Not ready while draining or while a route alarm is raised, with the routes named. */
  readonly readiness: Effect.Effect<Readiness>
}

/** The running server of the current program (provided by the layers in `layers/BoundedServer`). */
export class BoundedServer extends Context.Tag("corral/BoundedServer")<BoundedServer, BoundedServerShape>() {}
