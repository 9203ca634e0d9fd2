/**
 * BrokerClientLive: one request frame with a generated `request_id`, one reply frame, on a Unix-socket
 * connection (`node:net`) of a small pool (`BrokerConnections`: a few connections kept between calls,
 * so a hello does not pay a connect; `makeBrokerClient` keeps none). Each attempt has its own deadline;
 * a refusal with `retry_after_ms` is retried after that delay (on the Effect Clock), reusing the call's
 * `request_id`.
 */
import { randomUUID } from "node:crypto"
import { Duration, Effect, Either, Layer, ParseResult, Schema } from "effect"
import type { Scope } from "effect"
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
import { type BrokerConnections, makeBrokerConnections } from "./BrokerConnections.js"
import { encodeFrame } from "./BrokerFraming.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"

/** Deadline of one attempt (connect, send, reply) when none is given. */
export const defaultBrokerTimeoutMs = 10_000
/** Retries of a refusal carrying `retry_after_ms` when no other bound is given. */
export const defaultBrokerMaxRetries = 5
/** Connections `BrokerClientLive` and `makePooledBrokerClient` keep open between calls by default. */
export const defaultBrokerIdleConnections = 4

/** Options of a broker client. */
export interface BrokerClientOptions {
  /** Deadline of each attempt in milliseconds (default `defaultBrokerTimeoutMs`). */
  readonly timeoutMs?: number
  /** Retries after refusals carrying `retry_after_ms` (default `defaultBrokerMaxRetries`); 0 never retries. */
  readonly maxRetries?: number
  /** Connections kept open between calls (default 0 for `makeBrokerClient`, `defaultBrokerIdleConnections` pooled). */
  readonly idleConnections?: number
}

const decodeReply = Schema.decodeUnknownEither(BrokerReply)


const firstIssue = (error: ParseResult.ParseError): string => parseIssueLines(error)[0] ?? "does not match the protocol"

/** A broker client on `socketPath`; unless `idleConnections` says otherwise, no connection is kept between calls. */
export const makeBrokerClient = (socketPath: string, options: BrokerClientOptions = {}): BrokerClientShape =>
  clientOn(socketPath, makeBrokerConnections(socketPath, options.idleConnections ?? 0), options)

/** A broker client keeping up to `idleConnections` (default 4) connections between calls; the scope's end closes them. */
export const makePooledBrokerClient = (
  socketPath: string,
  options: BrokerClientOptions = {}
): Effect.Effect<BrokerClientShape, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => makeBrokerConnections(socketPath, options.idleConnections ?? defaultBrokerIdleConnections)),
      (connections) => connections.close
    ),
    (connections) => clientOn(socketPath, connections, options)
  )

const clientOn = (socketPath: string, connections: BrokerConnections, options: BrokerClientOptions): BrokerClientShape => {
  const timeoutMs = options.timeoutMs ?? defaultBrokerTimeoutMs
  const maxRetries = options.maxRetries ?? defaultBrokerMaxRetries

  const protocolError = (what: string, message: string): BrokerClientError =>
    new BrokerClientError({ reason: "Protocol", message: `${what} via ${socketPath}: ${message}` })

  /** One attempt: the reply, decoded, with its request_id checked. */
  const attempt = (frame: Uint8Array, requestId: string, what: string): Effect.Effect<BrokerReply, BrokerClientError> =>
    connections.exchange(frame, what).pipe(
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

/** The broker client for the broker listening on `socketPath`, with its pool of connections. */
export const BrokerClientLive = (socketPath: string, options?: BrokerClientOptions): Layer.Layer<BrokerClient> =>
  Layer.scoped(BrokerClient, makePooledBrokerClient(socketPath, options))
