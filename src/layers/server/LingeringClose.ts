/**
 * Closing a connection whose peer is still sending. A plain close() with unread bytes makes the kernel
 * answer with RST, and a client busy writing its body then sees the reset (its write fails) before it
 * reads the response that came first. So the write side is shut first (FIN after the response), reads
 * stay stopped (nothing more of the body is taken in), and the socket is destroyed after a bounded
 * wait, as Go's net/http does (its rstAvoidanceDelay, 500 ms).
 */
import type * as Http from "node:http"
import type * as Net from "node:net"

/** How long a closing connection waits for its peer to read the answer before it is reset. */
export const lingerMs = 500

/** Ends `socket` after what is already written (plus `lastBytes`), stops reading, destroys it within `ms`. */
export const closeLingering = (socket: Net.Socket, lastBytes?: Uint8Array, ms: number = lingerMs): void => {
  if (socket.destroyed) return
  const timer = setTimeout(() => socket.destroy(), ms)
  timer.unref()
  socket.once("close", () => clearTimeout(timer))
  // node:http stops reading the handle on the socket's 'pause' while its parser consumes it, and
  // resumes it when the request is dumped: paused again at once, before any read happens.
  socket.on("resume", () => socket.pause())
  socket.pause()
  if (lastBytes === undefined) socket.end()
  else socket.end(lastBytes)
}

/**
 * Makes node:http close `req`'s connection lingering when its response ends before the body arrived.
 * node:http has no hook for how it closes a `Connection: close` socket: it calls `destroySoon`, replaced
 * here on this one socket (kept as is once the body is complete).
 */
export const lingerIfBodyPending = (req: Http.IncomingMessage): void => {
  const socket = req.socket
  const destroySoon = socket.destroySoon.bind(socket)
  socket.destroySoon = () => (req.complete ? destroySoon() : closeLingering(socket))
}
