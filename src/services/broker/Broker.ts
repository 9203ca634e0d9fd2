/**
 * Broker: a per-user control plane on `run/broker.sock`. A client asks for a service by name and
 * version; the broker finds a live, verified backend or launches one, and answers its endpoint.
 * The broker is not on the data path afterwards.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import { BrokerErrorCode } from "./BrokerProtocol.js"

/** One backend as the admin snapshot shows it. */
export const BackendView = Schema.Struct({
  service: Schema.String,
  version: Schema.String,
  instance: Schema.String,
  /** Registry key: service, version, executable hash and launch fingerprint. */
  key: Schema.String,
  pid: Schema.NullOr(Schema.Number),
  endpoint: Schema.Unknown,
  state: Schema.String,
  started_at: Schema.NullOr(Schema.String),
  last_hello_at: Schema.NullOr(Schema.String),
  last_error: Schema.NullOr(Schema.String)
})

/** The broker's admin snapshot: real values, no placeholders. */
export const AdminSnapshot = Schema.Struct({
  instance: Schema.String,
  pid: Schema.Number,
  socket: Schema.String,
  uptime_sec: Schema.Number,
  accepting: Schema.Boolean,
  connections_open: Schema.Number,
  demoted: Schema.Boolean,
  backends: Schema.Array(BackendView),
  spawn_budgets: Schema.Array(
    Schema.Struct({ key: Schema.String, used: Schema.Number, retry_after_ms: Schema.Number, last_error: Schema.NullOr(Schema.String) })
  ),
  counters: Schema.Struct({
    hellos: Schema.Number,
    launches: Schema.Number,
    coalesced_waits: Schema.Number,
    launch_failures: Schema.Number,
    demotions: Schema.Number,
    recoveries: Schema.Number,
    rejects: Schema.Record({ key: BrokerErrorCode, value: Schema.Number })
  })
})
/** The broker's admin snapshot. */
export type AdminSnapshot = typeof AdminSnapshot.Type

/** A running broker. Its scope's end drains it and stops every backend it launched. */
export interface BrokerShape {
  readonly socketPath: string
  readonly snapshot: Effect.Effect<AdminSnapshot>
}

/** The broker of the current host. */
export class Broker extends Context.Tag("corral/Broker")<Broker, BrokerShape>() {}
