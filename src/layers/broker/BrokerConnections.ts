/**
 * Connections to the broker for `BrokerClient`: one request frame, one reply frame at a time per
 * connection (the broker serves frames on a connection in order, for as long as it stays open). Up to
 * `maxIdle` connections are kept between calls, each for at most `idleMs` (under the broker's read
 * deadline, which closes a silent connection) and never keeping the process alive; with `maxIdle` 0
 * every call gets a connection of its own. A kept connection found closed when reused is replaced once.
 */
import * as Net from "node:net"
import { Effect, Either } from "effect"
import { BrokerClientError } from "../../services/broker/BrokerClient.js"
import { errorCode } from "../../services/system/ErrorDetails.js"
import { FrameDecoder } from "./BrokerFraming.js"

/** How long a kept connection waits for the next call before it is closed. */
export const defaultIdleMs = 5_000

/** Sends request frames and answers the reply frames' JSON values. */
export interface BrokerConnections {
  /** Sends `frame` and answers the first reply frame's JSON value; `what` names the call in errors. */
  readonly exchange: (frame: Uint8Array, what: string) => Effect.Effect<unknown, BrokerClientError>
  /** Closes every kept connection (calls in flight finish on theirs, which are then closed). */
  readonly close: Effect.Effect<void>
}

type Outcome = Either.Either<unknown, { readonly reason: "Connection" | "Protocol"; readonly message: string }>

/** One socket and the call waiting on it, if any. */
interface Connection {
  readonly socket: Net.Socket
  readonly decoder: FrameDecoder
  waiting: ((outcome: Outcome) => void) | undefined
  closed: boolean
  /** Whether it carried a call before: a failure on it may be a close that raced the reuse. */
  reused: boolean
  idleTimer: ReturnType<typeof setTimeout> | undefined
}

const connectionError = (error: Error): string => {
  const code = errorCode(error)
  return `${error.message}${code === undefined || error.message.includes(code) ? "" : ` (${code})`}`
}

/** Connections to the broker on `socketPath`, keeping at most `maxIdle` open between calls. */
export const makeBrokerConnections = (socketPath: string, maxIdle: number, idleMs: number = defaultIdleMs): BrokerConnections => {
  const idle: Array<Connection> = []
  let closing = false

  const forget = (connection: Connection) => {
    const at = idle.indexOf(connection)
    if (at >= 0) idle.splice(at, 1)
    if (connection.idleTimer !== undefined) clearTimeout(connection.idleTimer)
  }

  const destroy = (connection: Connection) => {
    connection.closed = true
    forget(connection)
    connection.socket.destroy()
  }

  const open = (): Connection => {
    const connection: Connection = {
      socket: Net.createConnection({ path: socketPath }),
      decoder: new FrameDecoder(),
      waiting: undefined,
      closed: false,
      reused: false,
      idleTimer: undefined
    }
    const settle = (outcome: Outcome) => {
      const waiting = connection.waiting
      connection.waiting = undefined
      waiting?.(outcome)
    }
    connection.socket.on("data", (chunk: Buffer) => {
      const results = connection.decoder.push(chunk)
      const [first] = results
      if (first === undefined) return
      // A reply nobody asked for (or a second one) breaks the one-at-a-time exchange: drop the connection.
      if (connection.waiting === undefined || results.length > 1 || connection.decoder.pending() > 0) destroy(connection)
      if (Either.isLeft(first)) settle(Either.left({ reason: "Protocol", message: `bad reply frame: ${first.left.message}` }))
      else settle(Either.right(first.right))
    })
    connection.socket.on("error", (error) => {
      destroy(connection)
      settle(Either.left({ reason: "Connection", message: connectionError(error) }))
    })
    connection.socket.on("close", () => {
      const pending = connection.decoder.pending()
      destroy(connection)
      settle(Either.left({
        reason: "Connection",
        message: pending === 0
          ? "the broker closed the connection without a reply"
          : `the broker closed the connection ${pending} bytes into a reply frame`
      }))
    })
    return connection
  }

  /** Keeps `connection` for a later call, or closes it. */
  const release = (connection: Connection) => {
    if (connection.closed || closing || idle.length >= maxIdle) return destroy(connection)
    connection.reused = true
    connection.socket.unref()
    connection.idleTimer = setTimeout(() => destroy(connection), idleMs)
    connection.idleTimer.unref()
    idle.push(connection)
  }

  const acquire = (): Connection => {
    const kept = idle.pop()
    if (kept === undefined) return open()
    forget(kept)
    kept.socket.ref()
    return kept
  }

  /** One exchange on `connection`; interrupting it closes the connection. */
  const exchangeOn = (connection: Connection, frame: Uint8Array): Effect.Effect<Outcome> =>
    Effect.async<Outcome>((resume) => {
      connection.waiting = (outcome) => {
        if (Either.isRight(outcome)) release(connection)
        resume(Effect.succeed(outcome))
      }
      connection.socket.write(frame)
      return Effect.sync(() => {
        connection.waiting = undefined
        destroy(connection)
      })
    })

  const exchange = (frame: Uint8Array, what: string): Effect.Effect<unknown, BrokerClientError> =>
    Effect.suspend(() => {
      const connection = acquire()
      const fresh = Effect.suspend(() => exchangeOn(open(), frame))
      return Effect.flatMap(exchangeOn(connection, frame), (outcome) =>
        // A kept connection the broker closed as it was reused (its read deadline) is no answer: try a fresh one.
        Either.isLeft(outcome) && outcome.left.reason === "Connection" && connection.reused ? fresh : Effect.succeed(outcome))
    }).pipe(
      Effect.flatMap(Either.match({
        onLeft: ({ message, reason }) => Effect.fail(new BrokerClientError({ reason, message: `${what} via ${socketPath}: ${message}` })),
        onRight: Effect.succeed
      }))
    )

  const close = Effect.sync(() => {
    closing = true
    for (const connection of [...idle]) destroy(connection)
  })

  return { exchange, close }
}
