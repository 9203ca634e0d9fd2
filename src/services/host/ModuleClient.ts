/**
 * ModuleClient: HTTP JSON to modules over loopback TCP or a Unix socket, with keep-alive connections,
 * a deadline on every call, a response cap counted while the body streams in, and the headers a call
 * carries (the module's launch token, the invocation's deadline).
 */
import { Context, Schema } from "effect"
import type { Effect, Either } from "effect"

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

/** Extra request headers of one call, by lower-case name (`authorization`, `x-corral-deadline-ms`). */
export type CallHeaders = Readonly<Record<string, string>>

/** The header that carries a module's launch token: `Authorization: Bearer <token>`. */
export const bearerHeaders = (token: string): CallHeaders => ({ authorization: `Bearer ${token}` })

/** The header that carries an invocation's absolute deadline, in unix epoch milliseconds (a wire contract). */
export const deadlineHeader = "x-corral-deadline-ms"

/** A module reached over a Unix socket: its endpoint is `unix:` followed by the socket's absolute path. */
export const unixEndpointPrefix = "unix:"

/** The endpoint of a module listening on the Unix socket `socketPath`. */
export const unixEndpoint = (socketPath: string): string => `${unixEndpointPrefix}${socketPath}`

/** Limits of one call. */
export interface CallLimits {
  readonly timeoutMs: number
  readonly maxResponseBytes: number
}

/** HTTP JSON calls to a module at `endpoint` (`http://127.0.0.1:PORT` or `unix:/abs/path.sock`). */
export interface ModuleClientShape {
  /**
   * GET; any status is an answer (readiness and health read it); non-JSON bodies read as text. Sent
   * once more on a fresh connection when a reused one is reset before any answer (a GET has no effect).
   */
  readonly get: (endpoint: string, path: string, limits: CallLimits, headers?: CallHeaders) => Effect.Effect<ModuleReply, ModuleCallError>
  /**
   * POST a JSON body; a non-2xx status fails with `Status`, a non-JSON body (or one nested deeper
   * than `maxJsonDepth`) with `BadJson`. Never sent twice: a reset connection fails it with `Unreachable`.
   */
  readonly postJson: (
    endpoint: string,
    path: string,
    body: unknown,
    limits: CallLimits,
    headers?: CallHeaders
  ) => Effect.Effect<ModuleReply, ModuleCallError>
  /**
   * `postJson` as a callback, for the hook path (no fiber, no Effect per call): `done` is called exactly
   * once, unless the returned cancel function runs first (it destroys the call's socket). Optional: a
   * client without it (a scripted test client) is called through `postJson`.
   */
  readonly postJsonDirect?: (
    endpoint: string,
    path: string,
    body: unknown,
    limits: CallLimits,
    headers: CallHeaders,
    done: (result: Either.Either<ModuleReply, ModuleCallError>) => void
  ) => () => void
}

/** The module client of the current program. */
export class ModuleClient extends Context.Tag("corral/ModuleClient")<ModuleClient, ModuleClientShape>() {}
