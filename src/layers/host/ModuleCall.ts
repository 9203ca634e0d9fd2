/**
 * One call to a module over `node:http`: the endpoint resolved to a loopback target (once per endpoint),
 * one exchange with a deadline and a size cap counted while the answer streams, its socket destroyed when
 * it times out, overflows or is cancelled; and the one resend of a request met on a stale kept-alive socket.
 *
 * Resends, on a reused kept-alive connection that fails before any byte of the answer, once, on a
 * fresh connection: a GET (readiness, health: no effect in the module) after any reset or hang-up; a
 * POST (`middleware-init`, an invocation) only when the module cannot have read it — ECONNRESET or
 * EPIPE before the request was fully written (Node had not handed all of it to the kernel). A POST
 * written in full and then met by a reset or a close ("socket hang up") is not resent: the same
 * signs follow a module that read it and died or aborted, and running an invocation twice can count
 * twice (a quota, an audit line). When the module's process died, the executor tells that apart from
 * an unreachable module by its run having ended (`NotReady`, see `HttpExecutors`). A failure on a
 * fresh connection is not retried. The pool keeps such resets rare: it closes idle connections before
 * the module's announced idle timeout, keeps fewer idle connections than the module allows, and drops
 * a launch's connections when the module is restarted.
 */
import * as Http from "node:http"
import { Data, Effect, Either, Schema } from "effect"
import { LoopbackEndpoint } from "../../services/host/HostConfig.js"
import { type CallHeaders, type CallLimits, ModuleCallError, unixEndpointPrefix } from "../../services/host/ModuleClient.js"
import { errorCode } from "../../services/system/ErrorDetails.js"
import type { ModulePool } from "./ModulePool.js"

/** Where a call goes: a loopback host and port, or a Unix socket. */
type Target =
  | { readonly host: string; readonly port: number }
  | { readonly socketPath: string }

/** A module's answer as it came: its status and its whole body. */
export interface RawReply {
  readonly status: number
  readonly body: Buffer
}

/** A reused kept-alive socket was reset before any answer: the module closed it as the request left, or died with it. */
class StaleSocket extends Data.TaggedError("StaleSocket")<{ readonly message: string }> {}

const isLoopbackEndpoint = Schema.is(LoopbackEndpoint)

/** Endpoints resolved so far (a host has a few): the schema check and URL parse run once per endpoint, not per call. */
const targets = new Map<string, Target | undefined>()
const maxCachedTargets = 256

const moduleTarget = (endpoint: string): Target | undefined => {
  if (targets.has(endpoint)) return targets.get(endpoint)
  const target = resolveTarget(endpoint)
  if (targets.size < maxCachedTargets) targets.set(endpoint, target)
  return target
}

const resolveTarget = (endpoint: string): Target | undefined => {
  if (endpoint.startsWith(unixEndpointPrefix)) {
    const socketPath = endpoint.slice(unixEndpointPrefix.length)
    return socketPath.startsWith("/") ? { socketPath } : undefined
  }
  if (!isLoopbackEndpoint(endpoint)) return undefined
  try {
    const url = new URL(endpoint)
    return { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port) }
  } catch {
    return undefined
  }
}

const resetCodes = new Set(["ECONNRESET", "EPIPE"])

/** Opens a new connection for every request (no keep-alive): the one resend after a stale kept-alive socket. */
const freshConnection = new Http.Agent({ keepAlive: false })

/** How an exchange ends: the raw answer, or why there is none. */
type Exchanged = Either.Either<RawReply, ModuleCallError | StaleSocket>

/**
 * One request/response exchange on the agent, with a deadline and a streaming size cap, as a callback:
 * `done` is called exactly once, unless the returned cancel function runs first (it destroys the socket).
 */
const exchangeDirect = (
  agent: Http.Agent,
  target: Target,
  method: "GET" | "POST",
  endpoint: string,
  path: string,
  body: Buffer | undefined,
  limits: CallLimits,
  extraHeaders: CallHeaders,
  retryOnStale: boolean,
  done: (result: Exchanged) => void
): () => void => {
  const where = `${method} ${endpoint}${path}`
  let settled = false
  let answered = false
  const headers: Record<string, string | number> = { ...extraHeaders, accept: "application/json" }
  if (body !== undefined) {
    headers["content-type"] = "application/json"
    headers["content-length"] = body.length
  }
  const request = Http.request({ agent, ...target, method, path, headers })

  const settle = (result: Exchanged): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    done(result)
  }
  const fail = (reason: ModuleCallError["reason"], message: string, status?: number): void =>
    settle(Either.left(
      new ModuleCallError({
        endpoint,
        path,
        reason,
        message: `${where}: ${message}`,
        ...(status === undefined ? {} : { status })
      })
    ))
  const abandon = (reason: ModuleCallError["reason"], message: string): void => {
    fail(reason, message)
    request.destroy()
  }

  const timer = setTimeout(() => abandon("Timeout", `no complete answer within ${limits.timeoutMs} ms`), limits.timeoutMs)

  request.on("error", (error) => {
    if (settled) return
    const code = errorCode(error)
    // A POST is resent only when the module cannot have read it (see the file's doc): it was not fully written.
    const unread = method === "GET" || !request.writableFinished
    if (retryOnStale && request.reusedSocket && !answered && unread && code !== undefined && resetCodes.has(code)) {
      settle(Either.left(new StaleSocket({ message: error.message })))
    } else {
      fail("Unreachable", `${error.message}${code === undefined || error.message.includes(code) ? "" : ` (${code})`}`)
    }
  })
  request.on("response", (response) => {
    answered = true
    const status = response.statusCode ?? 0
    const declared = Number(response.headers["content-length"])
    if (Number.isFinite(declared) && declared > limits.maxResponseBytes) {
      abandon("TooLarge", `answer of ${declared} bytes exceeds max_response_bytes ${limits.maxResponseBytes}`)
      return
    }
    const chunks: Array<Buffer> = []
    let received = 0
    response.on("data", (chunk: Buffer) => {
      if (settled) return
      received += chunk.length
      if (received > limits.maxResponseBytes) {
        abandon("TooLarge", `answer exceeds max_response_bytes ${limits.maxResponseBytes} (aborted while streaming)`)
        return
      }
      chunks.push(chunk)
    })
    response.on("end", () => settle(Either.right({ status, body: Buffer.concat(chunks, received) })))
    // A socket closed mid-body surfaces here; the `close` check below reports it.
    response.on("error", () => undefined)
    response.on("close", () => {
      if (!response.complete) fail("Unreachable", "the connection closed before the answer was complete")
    })
  })
  request.end(body)

  return () => {
    clearTimeout(timer)
    if (!settled) {
      settled = true
      request.destroy()
    }
  }
}

const noCancel = (): void => undefined

/**
 * One call as a callback (the hook path's form: no fiber, no Effect): `done` is called exactly once,
 * unless the returned cancel function runs first. `call` is the same as an Effect.
 */
export const callDirect = (
  pool: ModulePool,
  method: "GET" | "POST",
  endpoint: string,
  path: string,
  body: Buffer | undefined,
  limits: CallLimits,
  headers: CallHeaders,
  done: (result: Either.Either<RawReply, ModuleCallError>) => void
): () => void => {
  // Refused before a connection is made.
  const refuse = (message: string): () => void => {
    done(Either.left(new ModuleCallError({ endpoint, path, reason: "Unreachable", message })))
    return noCancel
  }
  const target = moduleTarget(endpoint)
  if (target === undefined) {
    return refuse(`${method} ${endpoint}${path}: not a loopback endpoint (modules are only reached on 127.0.0.1, localhost, [::1] or unix:/absolute/path)`)
  }
  if (!path.startsWith("/")) return refuse(`${method} ${endpoint}: path "${path}" must start with "/"`)
  const unreachable = (error: ModuleCallError | StaleSocket): ModuleCallError =>
    error._tag === "StaleSocket"
      ? new ModuleCallError({ endpoint, path, reason: "Unreachable", message: `${method} ${endpoint}${path}: ${error.message}` })
      : error
  const agent = pool.agentFor(endpoint, headers.authorization)
  // Node's documented remedy for the keep-alive race (see the file's doc for when a POST is resent): a
  // reused socket reset before any answer means the module closed it while idle, or died; send it once
  // more on a new connection (the pool's next idle socket may be just as dead).
  let cancel = exchangeDirect(agent, target, method, endpoint, path, body, limits, headers, true, (first) => {
    if (Either.isLeft(first) && first.left._tag === "StaleSocket") {
      cancel = exchangeDirect(freshConnection, target, method, endpoint, path, body, limits, headers, false, (second) =>
        done(Either.mapLeft(second, unreachable)))
    } else {
      done(Either.mapLeft(first, unreachable))
    }
  })
  return () => cancel()
}

/** `callDirect` as an Effect: interrupting it destroys the socket. */
export const call = (
  pool: ModulePool,
  method: "GET" | "POST",
  endpoint: string,
  path: string,
  body: Buffer | undefined,
  limits: CallLimits,
  headers: CallHeaders
): Effect.Effect<RawReply, ModuleCallError> =>
  Effect.async<RawReply, ModuleCallError>((resume) => {
    const cancel = callDirect(pool, method, endpoint, path, body, limits, headers, resume)
    return Effect.sync(cancel)
  })
