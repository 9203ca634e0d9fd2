/** `BoundedConnection` over a `node:net` socket, with pull-based reads. */
import type * as Net from "node:net"
import { Effect, Option } from "effect"
import { ConnectionError, type BoundedConnection } from "../../services/server/BoundedConnection.js"

const ignoreIdle = (_idle: boolean) => {}

/**
 * Wraps an admitted socket; the socket starts paused and is resumed only while a read waits. `setIdle`
 * reaches the server's idle tracking (none by default).
 */
export const makeNodeConnection = (id: string, socket: Net.Socket, setIdle: (idle: boolean) => void = ignoreIdle): BoundedConnection => {
  socket.pause()
  const read = Effect.async<Option.Option<Uint8Array>, ConnectionError>((resume) => {
    if (socket.readableEnded) return resume(Effect.succeed(Option.none()))
    if (socket.destroyed) return resume(Effect.fail(new ConnectionError({ reason: "Closed", message: "connection closed" })))
    const cleanup = () => {
      socket.pause()
      socket.off("data", onData)
      socket.off("end", onEnd)
      socket.off("error", onError)
      socket.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      cleanup()
      resume(Effect.succeed(Option.some(chunk)))
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Option.none()))
    }
    const onError = (error: Error) => {
      cleanup()
      resume(Effect.fail(new ConnectionError({ reason: "Read", message: error.message })))
    }
    const onClose = () => {
      cleanup()
      resume(Effect.fail(new ConnectionError({ reason: "Closed", message: "connection closed" })))
    }
    socket.on("data", onData)
    socket.on("end", onEnd)
    socket.on("error", onError)
    socket.on("close", onClose)
    socket.resume()
    return Effect.sync(cleanup)
  })
  const write = (bytes: Uint8Array | string) =>
    Effect.async<void, ConnectionError>((resume) => {
      if (socket.destroyed || socket.writableEnded) {
        return resume(Effect.fail(new ConnectionError({ reason: "Closed", message: "connection closed" })))
      }
      socket.write(bytes, (error) =>
        resume(error ? Effect.fail(new ConnectionError({ reason: "Write", message: error.message })) : Effect.void)
      )
    })
  return {
    id,
    remoteAddress: socket.remoteAddress,
    read,
    write,
    end: Effect.sync(() => {
      if (!socket.destroyed && !socket.writableEnded) socket.end()
    }),
    destroy: Effect.sync(() => {
      socket.destroy()
    }),
    setIdle
  }
}
