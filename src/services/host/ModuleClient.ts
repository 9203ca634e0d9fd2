/**
 * ModuleClient: HTTP JSON to modules over loopback, with keep-alive connections, a deadline on
 * every call and a response cap counted while the body streams in.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"

/** A module call that did not produce a usable answer. */
export class ModuleCallError extends Schema.TaggedError<ModuleCallError>()("ModuleCallError", {
  endpoint: Schema.String,
  path: Schema.String,
  reason: Schema.Literal("Unreachable", "Timeout", "TooLarge", "BadJson", "Status"),
  status: Schema.optional(Schema.Number),
  message: Schema.String
}) {}

/** An answer: its status and its JSON body (`null` for an empty body). */
export interface ModuleReply {
  readonly status: number
  readonly body: unknown
}

/** Limits of one call. */
export interface CallLimits {
  readonly timeoutMs: number
  readonly maxResponseBytes: number
}

/** HTTP JSON calls to a module at `endpoint` (`http://127.0.0.1:PORT`). */
export interface ModuleClientShape {
  /** GET; any status is an answer (readiness and health read it); non-JSON bodies read as text. */
  readonly get: (endpoint: string, path: string, limits: CallLimits) => Effect.Effect<ModuleReply, ModuleCallError>
  /** POST a JSON body; a non-2xx status fails with `Status`, a non-JSON body with `BadJson`. */
  readonly postJson: (endpoint: string, path: string, body: unknown, limits: CallLimits) => Effect.Effect<ModuleReply, ModuleCallError>
}

/** The module client of the current program. */
export class ModuleClient extends Context.Tag("corral/ModuleClient")<ModuleClient, ModuleClientShape>() {}
