/**
 * BrokerClientLive: one fresh Unix-socket connection per attempt (`node:net`), one request frame with
 * a generated `request_id`, one reply frame, then the connection is destroyed. Each attempt has its own
 * deadline; a refusal with `retry_after_ms` is retried after that delay (on the Effect Clock), reusing
 * the call's `request_id`.
 */
import { randomUUID } from "node:crypto"
import * as Net from "node:net"
import { Duration, Effect, Either, Layer, ParseResult, Schema } from "effect"
import { BrokerClient, BrokerClientError, type BrokerClientShape } from "../../services/broker/BrokerClient.js"
import {
  type AdminReply,
  type AdminRequest,
  type AdminVerb,
  brokerProtocolVersion,
  BrokerReply,
  type HelloOk,
  type HelloRequest
} from "../../services/broker/BrokerProtocol.js"
import { encodeFrame, FrameDecoder } from "./BrokerFraming.js"
import { errorCode } from "../../services/system/ErrorDetails.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"

/** Deadline of one attempt (connect, send, reply) when none is given. */
export const defaultBrokerTimeoutMs = 10_000
/** Retries of a refusal carrying `retry_after_ms` when no other bound is given. */
export const defaultBrokerMaxRetries = 5

/** Options of a broker client. */
export interface BrokerClientOptions {
  /** Deadline of each attempt in milliseconds (default `defaultBrokerTimeoutMs`). */
  readonly timeoutMs?: number
  /** Retries after refusals carrying `retry_after_ms` (default `defaultBrokerMaxRetries`); 0 never retries. */
  readonly maxRetries?: number
}

const decodeReply = Schema.decodeUnknownEither(BrokerReply)


/** Sends `frame` on a new connection and answers the first reply frame's JSON value. */
const exchange = (socketPath: string, frame: Uint8Array, what: string): Effect.Effect<unknown, BrokerClientError> =>
  Effect.async<unknown, BrokerClientError>((resume) => {
    const socket = Net.createConnection({ path: socketPath })
    const decoder = new FrameDecoder()
    let settled = false
    const settle = (effect: Effect.Effect<unknown, BrokerClientError>): void => {
      if (settled) return
      settled = true
      socket.destroy()
      resume(effect)
    }
    const fail = (reason: "Connection" | "Protocol", message: string): void =>
      settle(Effect.fail(new BrokerClientError({ reason, message: `${what} via ${socketPath}: ${message}` })))

    socket.on("data", (chunk: Buffer) => {
      const first = decoder.push(chunk)[0]
      if (first === undefined) return
      if (Either.isLeft(first)) fail("Protocol", `bad reply frame: ${first.left.message}`)
      else settle(Effect.succeed(first.right))
    })
    socket.on("error", (error) => {
      const code = errorCode(error)
      fail("Connection", `${error.message}${code === undefined || error.message.includes(code) ? "" : ` (${code})`}`)
    })
    socket.on("close", () => {
      const pending = decoder.pending()
      fail(
        "Connection",
        pending === 0
          ? "the broker closed the connection without a reply"
          : `the broker closed the connection ${pending} bytes into a reply frame`
      )
    })
    socket.write(frame)

    return Effect.sync(() => {
      if (!settled) {
        settled = true
        socket.destroy()
      }
    })
  })

const firstIssue = (error: ParseResult.ParseError): string => parseIssueLines(error)[0] ?? "does not match the protocol"

/** A broker client on `socketPath` (no resources held between calls). */
export const makeBrokerClient = (socketPath: string, options: BrokerClientOptions = {}): BrokerClientShape => {
  const timeoutMs = options.timeoutMs ?? defaultBrokerTimeoutMs
  const maxRetries = options.maxRetries ?? defaultBrokerMaxRetries

  const protocolError = (what: string, message: string): BrokerClientError =>
    new BrokerClientError({ reason: "Protocol", message: `${what} via ${socketPath}: ${message}` })

  /** One attempt: the reply, decoded, with its request_id checked. */
  const attempt = (frame: Uint8Array, requestId: string, what: string): Effect.Effect<BrokerReply, BrokerClientError> =>
    exchange(socketPath, frame, what).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(timeoutMs),
        onTimeout: () =>
          new BrokerClientError({ reason: "Timeout", message: `${what} via ${socketPath}: no reply within ${timeoutMs} ms` })
      }),
      Effect.flatMap((value) =>
        Either.match(decodeReply(value), {
          onLeft: (error) => Effect.fail(protocolError(what, `reply does not match the protocol: ${firstIssue(error)}`)),
          onRight: (reply) => {
            // An error reply may lack the id (the broker could not read the request); any other must echo it.
            const echoed = reply.request_id === requestId || (reply.type === "error" && reply.request_id === undefined)
            return echoed
              ? Effect.succeed(reply)
              : Effect.fail(protocolError(what, `reply request_id ${JSON.stringify(reply.request_id)} is not ${JSON.stringify(requestId)}`))
          }
        })
      )
    )

  /** Sends `request` (one request_id per call) until a reply other than a retryable refusal, or retries run out. */
  const call = (
    request: (requestId: string) => HelloRequest | AdminRequest,
    what: string
  ): Effect.Effect<Exclude<BrokerReply, { readonly type: "error" }>, BrokerClientError> =>
    Effect.gen(function*() {
      const requestId = yield* Effect.sync(() => randomUUID())
      const frame = yield* Either.match(encodeFrame(request(requestId)), {
        onLeft: (error) => Effect.fail(protocolError(what, `request cannot be sent: ${error.message}`)),
        onRight: Effect.succeed
      })
      let retries = 0
      for (;;) {
        const reply = yield* attempt(frame, requestId, what)
        if (reply.type !== "error") return reply
        const retryAfterMs = reply.retry_after_ms
        if (retryAfterMs !== undefined && retries < maxRetries) {
          retries += 1
          yield* Effect.sleep(Duration.millis(retryAfterMs))
          continue
        }
        const after = retries === 0 ? "" : ` (after ${retries} ${retries === 1 ? "retry" : "retries"})`
        return yield* Effect.fail(
          new BrokerClientError({
            reason: "Refused",
            code: reply.code,
            message: `${what} refused: ${reply.code}: ${reply.message}${after}`,
            ...(retryAfterMs === undefined ? {} : { retryAfterMs })
          })
        )
      }
    })

  const hello = (service: string, version?: string): Effect.Effect<HelloOk, BrokerClientError> => {
    const what = `hello ${JSON.stringify(service)}`
    return call(
      (requestId) => ({
        type: "hello",
        service,
        ...(version === undefined ? {} : { version }),
        request_id: requestId,
        protocol: brokerProtocolVersion
      }),
      what
    ).pipe(
      Effect.flatMap((reply) =>
        reply.type === "hello.ok"
          ? Effect.succeed(reply)
          : Effect.fail(protocolError(what, `expected a hello.ok reply, got ${JSON.stringify(reply.type)}`))
      )
    )
  }

  const admin = (verb: AdminVerb): Effect.Effect<AdminReply, BrokerClientError> => {
    const what = `admin ${verb}`
    return call((requestId) => ({ type: "admin", verb, request_id: requestId }), what).pipe(
      Effect.flatMap((reply) =>
        reply.type !== "hello.ok" && reply.type === `admin.${verb}`
          ? Effect.succeed(reply)
          : Effect.fail(protocolError(what, `expected an admin.${verb} reply, got ${JSON.stringify(reply.type)}`))
      )
    )
  }

  return { hello, admin }
}

/** The broker client for the broker listening on `socketPath`. */
export const BrokerClientLive = (socketPath: string, options?: BrokerClientOptions): Layer.Layer<BrokerClient> =>
  Layer.succeed(BrokerClient, makeBrokerClient(socketPath, options))
