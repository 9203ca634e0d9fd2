/**
 * ModuleClientLive: HTTP JSON to modules over `node:http`, on loopback TCP or a Unix socket
 * (`unix:/abs/path`), on kept-alive connections from `ModulePool` (a small pool per endpoint and
 * launch, destroyed with the layer's scope). Every call has a deadline, carries the headers it is
 * given (the module's launch token), counts the body while it streams, and destroys its socket when
 * it times out, overflows or is interrupted (`ModuleCall.ts`, which also says when a call is resent).
 * Here: what an answer means — a GET's body as JSON or text, a POST's as a 2xx JSON value or a typed error.
 */
import { Effect, Either, Layer } from "effect"
import type { Scope } from "effect"
import {
  type CallHeaders,
  type CallLimits,
  ModuleCallError,
  ModuleClient,
  type ModuleClientShape,
  type ModuleReply
} from "../../services/host/ModuleClient.js"
import { exceedsJsonDepth, maxJsonDepth } from "../../services/system/JsonDepth.js"
import { forwardedJson } from "./ForwardedJson.js"
import { call, callDirect, type RawReply } from "./ModuleCall.js"
import { defaultMaxSocketsPerEndpoint, makeModulePool, type ModulePool, type ModulePoolOptions } from "./ModulePool.js"

export { defaultMaxSocketsPerEndpoint }

/** Characters of a body quoted in an error message. */
const snippetLength = 200

/** Options of a module client: the bounds of its connection pools. */
export type ModuleClientOptions = ModulePoolOptions

const snippet = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > snippetLength ? `${flat.slice(0, snippetLength)}…` : flat
}

const readGet = ({ body, status }: RawReply): ModuleReply => {
  const text = body.toString("utf8")
  if (text.length === 0) return { status, body: null }
  try {
    return { status, body: JSON.parse(text) as unknown }
  } catch {
    return { status, body: text }
  }
}

const readPost = (endpoint: string, path: string, { body, status }: RawReply): Either.Either<ModuleReply, ModuleCallError> => {
  const text = body.toString("utf8")
  if (status < 200 || status > 299) {
    return Either.left(
      new ModuleCallError({
        endpoint,
        path,
        reason: "Status",
        status,
        message: `POST ${endpoint}${path}: answered ${status}: ${snippet(text) || "(empty body)"}`
      })
    )
  }
  if (text.length === 0) return Either.right({ status, body: null })
  if (exceedsJsonDepth(text)) {
    return Either.left(
      new ModuleCallError({
        endpoint,
        path,
        reason: "BadJson",
        status,
        message: `POST ${endpoint}${path}: answer nests deeper than ${maxJsonDepth} levels of arrays and objects`
      })
    )
  }
  try {
    return Either.right({ status, body: JSON.parse(text) as unknown })
  } catch {
    return Either.left(
      new ModuleCallError({ endpoint, path, reason: "BadJson", status, message: `POST ${endpoint}${path}: answer is not JSON: ${snippet(text)}` })
    )
  }
}

/** A JSON POST as a callback: `readPost` on what `callDirect` answers. */
const postJsonDirect = (
  pool: ModulePool,
  endpoint: string,
  path: string,
  body: unknown,
  limits: CallLimits,
  headers: CallHeaders,
  done: (result: Either.Either<ModuleReply, ModuleCallError>) => void
): () => void => {
  // An envelope the host only forwards goes out as the bytes it came in as, not re-encoded.
  const forwarded = forwardedJson(body)
  const bytes = forwarded === undefined
    ? Buffer.from(JSON.stringify(body) ?? "null", "utf8")
    : Buffer.from(forwarded.buffer, forwarded.byteOffset, forwarded.byteLength)
  return callDirect(pool, "POST", endpoint, path, bytes, limits, headers, (sent) =>
    done(Either.flatMap(sent, (reply) => readPost(endpoint, path, reply))))
}

/** Builds a module client whose connection pools are destroyed (every socket closed) when the scope closes. */
export const makeModuleClient = (options: ModuleClientOptions = {}): Effect.Effect<ModuleClientShape, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(Effect.sync(() => makeModulePool(options)), (pool) => Effect.sync(() => pool.destroy())),
    (pool): ModuleClientShape => ({
      get: (endpoint, path, limits, headers = {}) => Effect.map(call(pool, "GET", endpoint, path, undefined, limits, headers), readGet),
      postJson: (endpoint, path, body, limits, headers = {}) =>
        Effect.async<ModuleReply, ModuleCallError>((resume) => Effect.sync(postJsonDirect(pool, endpoint, path, body, limits, headers, resume))),
      postJsonDirect: (endpoint, path, body, limits, headers, done) => postJsonDirect(pool, endpoint, path, body, limits, headers, done)
    })
  )

/** The real module client: `node:http`, keep-alive pools of at most `defaultMaxSocketsPerEndpoint` sockets per endpoint. */
export const ModuleClientLive: Layer.Layer<ModuleClient> = Layer.scoped(ModuleClient, makeModuleClient())
