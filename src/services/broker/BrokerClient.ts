/**
 * BrokerClient: asks the broker over its Unix socket for a backend (`hello`) or an admin answer,
 * retrying a refusal that says when to retry.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import { type AdminReply, type AdminVerb, BrokerErrorCode, type HelloOk } from "./BrokerProtocol.js"

/**
 * A broker call without a usable answer: `Refused` (an `error` reply, with its `code`), `Timeout`,
 * `Connection` (unreachable, or closed before a reply) or `Protocol` (a reply that breaks the protocol).
 */
export class BrokerClientError extends Schema.TaggedError<BrokerClientError>()("BrokerClientError", {
  reason: Schema.Literal("Refused", "Timeout", "Connection", "Protocol"),
  code: Schema.optional(BrokerErrorCode),
  /** The last `retry_after_ms` of a refusal whose retries ran out. */
  retryAfterMs: Schema.optional(Schema.Number),
  message: Schema.String
}) {}

/** Calls to the broker; each may retry a refusal carrying `retry_after_ms`. */
export interface BrokerClientShape {
  /** A backend of `service` (at `version`, else the definition's default), launching it if needed. */
  readonly hello: (service: string, version?: string) => Effect.Effect<HelloOk, BrokerClientError>
  /** The broker's answer to an admin verb (`type` is `admin.<verb>`). */
  readonly admin: (verb: AdminVerb) => Effect.Effect<AdminReply, BrokerClientError>
}

/** The broker client of the current program. */
export class BrokerClient extends Context.Tag("corral/BrokerClient")<BrokerClient, BrokerClientShape>() {}
