/**
 * The broker's wire protocol (v1), frozen: frames are a 4-byte big-endian length then that many
 * bytes of UTF-8 JSON (1..65536). Requests: `hello`, `admin`. Replies: `hello.ok`, `admin.<verb>`,
 * `error` with a stable code. Golden-byte tests pin it.
 */
import { Schema } from "effect"

/** The protocol version a `hello` must carry. */
export const brokerProtocolVersion = 1
/** Bytes of the length prefix. */
export const frameHeaderBytes = 4
/** Largest frame body accepted or sent. */
export const maxFrameBytes = 65_536

/** A service name: what `<data-dir>/services/<name>.service.json` is named after. */
export const ServiceName = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9-]{1,64}$/, { message: () => "a service name is 1 to 64 of a-z, 0-9 and -" })
)

/** Where a backend listens. */
export const Endpoint = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("unix"), path: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("tcp"), host: Schema.String, port: Schema.Int })
)
/** Where a backend listens. */
export type Endpoint = typeof Endpoint.Type

/** Asks for a backend of `service` (at `version`, or the definition's default). */
export const HelloRequest = Schema.Struct({
  type: Schema.Literal("hello"),
  service: ServiceName,
  version: Schema.optional(Schema.String),
  request_id: Schema.optional(Schema.String),
  protocol: Schema.Literal(brokerProtocolVersion)
})
/** Asks for a backend. */
export type HelloRequest = typeof HelloRequest.Type

/** The admin verbs. */
export const AdminVerb = Schema.Literal("status", "healthz", "readyz", "metrics", "shutdown")
/** The admin verbs. */
export type AdminVerb = typeof AdminVerb.Type

/** An admin request. */
export const AdminRequest = Schema.Struct({
  type: Schema.Literal("admin"),
  verb: AdminVerb,
  request_id: Schema.optional(Schema.String)
})
/** An admin request. */
export type AdminRequest = typeof AdminRequest.Type

/** Any request. */
export const BrokerRequest = Schema.Union(HelloRequest, AdminRequest)
/** Any request. */
export type BrokerRequest = typeof BrokerRequest.Type

/** A backend for the hello: where it is and whether this hello launched it. */
export const HelloOk = Schema.Struct({
  type: Schema.Literal("hello.ok"),
  request_id: Schema.optional(Schema.String),
  service: Schema.String,
  version: Schema.String,
  endpoint: Endpoint,
  instance: Schema.String,
  launched: Schema.Boolean
})
/** A backend for the hello. */
export type HelloOk = typeof HelloOk.Type

/** An admin answer: `type` is `admin.<verb>`, `body` the verb's answer. */
export const AdminReply = Schema.Struct({
  type: Schema.TemplateLiteral(Schema.Literal("admin."), AdminVerb),
  request_id: Schema.optional(Schema.String),
  body: Schema.Unknown
})
/** An admin answer. */
export type AdminReply = typeof AdminReply.Type

/** Stable error codes. */
export const BrokerErrorCode = Schema.Literal(
  "bad_frame",
  "unknown_service",
  "version_blocked",
  "launch_failed",
  "overloaded",
  "unsupported",
  "rate_limited"
)
/** Stable error codes. */
export type BrokerErrorCode = typeof BrokerErrorCode.Type

/** A refusal, with a stable code and, where a retry makes sense, when to retry. */
export const ErrorReply = Schema.Struct({
  type: Schema.Literal("error"),
  request_id: Schema.optional(Schema.String),
  code: BrokerErrorCode,
  message: Schema.String,
  retry_after_ms: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
})
/** A refusal. */
export type ErrorReply = typeof ErrorReply.Type

/** Any reply. */
export const BrokerReply = Schema.Union(HelloOk, AdminReply, ErrorReply)
/** Any reply. */
export type BrokerReply = typeof BrokerReply.Type
