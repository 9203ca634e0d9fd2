/**
 * A raw broker peer for end-to-end framing tests: a `node:net` connection to the broker's Unix
 * socket that writes exact bytes and reads reply frames, and records when the broker closed it.
 */
import * as Net from "node:net"
import { performance } from "node:perf_hooks"
import { Deferred, Duration, Effect, Either, Exit, Queue } from "effect"
import type { Scope } from "effect"
import { encodeFrame, FrameDecoder } from "../../src/layers/broker/BrokerFraming.js"

/** One reply frame as the broker sent it (a JSON object). */
export type ReplyFrame = Readonly<Record<string, unknown>>

/** An open connection to the broker that speaks bytes. */
export interface RawPeer {
  /** `performance.now()` when the connection was established. */
  readonly connectedAt: number
  /** Writes `bytes` as they are (nothing once the connection is closed). */
  readonly send: (bytes: Uint8Array) => Effect.Effect<void>
  /** The next reply frame; dies when none arrives within `timeoutMs`. */
  readonly reply: (timeoutMs?: number) => Effect.Effect<ReplyFrame>
  /** `performance.now()` when the broker closed the connection; dies when it stays open for `timeoutMs`. */
  readonly closedAt: (timeoutMs?: number) => Effect.Effect<number>
  /** Whether the broker has closed the connection (ended its side, or it was reset). */
  readonly isClosed: Effect.Effect<boolean>
  /** Replies received and not yet taken. */
  readonly unread: Effect.Effect<number>
  /** Closes the connection from this side at once. */
  readonly destroy: Effect.Effect<void>
}

/** `value` as one frame (4-byte big-endian length, UTF-8 JSON). */
export const frameOf = (value: unknown): Uint8Array =>
  Either.getOrElse(encodeFrame(value), (error) => {
    throw new Error(`test frame cannot be encoded: ${error.message}`)
  })

/** A frame header announcing `length` body bytes. */
export const headerOf = (length: number): Uint8Array => {
  const header = new Uint8Array(4)
  new DataView(header.buffer).setUint32(0, length, false)
  return header
}

/** A frame whose body is exactly `text` (not necessarily JSON). */
export const rawFrameOf = (text: string): Uint8Array => {
  const body = new TextEncoder().encode(text)
  const frame = new Uint8Array(4 + body.length)
  frame.set(headerOf(body.length), 0)
  frame.set(body, 4)
  return frame
}

const isRecord = (value: unknown): value is ReplyFrame => typeof value === "object" && value !== null && !Array.isArray(value)

/** Connects to `socketPath`; the scope's end destroys the connection. Dies if the connect fails. */
export const connectRaw = (socketPath: string): Effect.Effect<RawPeer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const replies = yield* Queue.unbounded<Either.Either<ReplyFrame, string>>()
    const closed = yield* Deferred.make<number>()
    const socket = yield* Effect.acquireRelease(
      Effect.async<Net.Socket>((resume) => {
        const socket = Net.createConnection({ path: socketPath })
        const decoder = new FrameDecoder()
        const markClosed = () => Deferred.unsafeDone(closed, Exit.succeed(performance.now()))
        socket.on("data", (chunk: Buffer) => {
          for (const result of decoder.push(chunk)) {
            Queue.unsafeOffer(
              replies,
              Either.isLeft(result)
                ? Either.left(`bad reply frame: ${result.left.message}`)
                : isRecord(result.right)
                ? Either.right(result.right)
                : Either.left(`reply is not a JSON object: ${JSON.stringify(result.right)}`)
            )
          }
        })
        socket.on("end", markClosed)
        socket.on("close", markClosed)
        socket.on("error", () => undefined)
        socket.once("connect", () => resume(Effect.succeed(socket)))
        socket.once("error", (error) => resume(Effect.die(new Error(`cannot connect to ${socketPath}: ${error.message}`))))
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )
    const connectedAt = performance.now()
    return {
      connectedAt,
      send: (bytes) =>
        Effect.sync(() => {
          if (socket.writable) socket.write(bytes)
        }),
      reply: (timeoutMs = 5_000) =>
        Queue.take(replies).pipe(
          Effect.timeout(Duration.millis(timeoutMs)),
          Effect.catchTag("TimeoutException", () =>
            Effect.flatMap(Deferred.isDone(closed), (isClosed) =>
              Effect.dieMessage(`no reply frame within ${timeoutMs} ms (connection ${isClosed ? "closed" : "open"})`))),
          Effect.flatMap(Either.match({ onLeft: Effect.dieMessage, onRight: Effect.succeed }))
        ),
      closedAt: (timeoutMs = 5_000) =>
        Deferred.await(closed).pipe(
          Effect.timeout(Duration.millis(timeoutMs)),
          Effect.catchTag("TimeoutException", () => Effect.dieMessage(`the broker kept the connection open for ${timeoutMs} ms`))
        ),
      isClosed: Deferred.isDone(closed),
      unread: Queue.size(replies),
      destroy: Effect.sync(() => socket.destroy())
    } satisfies RawPeer
  })

/** Sends `request` as one frame and answers the next reply frame. */
export const exchange = (peer: RawPeer, request: unknown, timeoutMs?: number): Effect.Effect<ReplyFrame> =>
  Effect.zipRight(peer.send(frameOf(request)), peer.reply(timeoutMs))

/** Polls `condition` every 20 ms; dies with `what` when it does not hold within `timeoutMs`. */
export const eventually = <E, R>(
  what: string,
  condition: Effect.Effect<boolean, E, R>,
  timeoutMs = 5_000
): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const deadline = performance.now() + timeoutMs
    while (!(yield* condition)) {
      if (performance.now() > deadline) return yield* Effect.dieMessage(`${what}: not within ${timeoutMs} ms`)
      yield* Effect.sleep(Duration.millis(20))
    }
  })

