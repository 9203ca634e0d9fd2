// Idle-connection floods for the fault campaign: many connections opened to the control server
// (TCP on loopback) and the broker socket (unix) that send nothing, held until released. Reports how
// many connected, how many the server closed by itself while we held them, and whether it wrote
// anything first (a 503, an error frame).
import * as net from "node:net"

/**
 * Opens `count` idle connections to `target` (net.connect options: `{ host, port }` or `{ path }`),
 * at most `connectTimeoutMs` each. Resolves `{ release, report }` once all settled.
 */
export const openIdleFlood = async (target, count, connectTimeoutMs = 3_000) => {
  const sockets = []
  const stats = { wanted: count, connected: 0, connect_failed: {}, closed_by_server: 0, answered_before_close: 0 }
  const one = () =>
    new Promise((resolve) => {
      const socket = net.connect(target)
      let connected = false
      let released = false
      let answered = false
      const timer = setTimeout(() => {
        if (!connected) {
          stats.connect_failed.timeout = (stats.connect_failed.timeout ?? 0) + 1
          socket.destroy()
          resolve()
        }
      }, connectTimeoutMs)
      socket.on("connect", () => {
        connected = true
        stats.connected++
        clearTimeout(timer)
        resolve()
      })
      socket.on("data", () => {
        answered = true
      })
      socket.on("error", (error) => {
        if (!connected) {
          const code = error.code ?? "error"
          stats.connect_failed[code] = (stats.connect_failed[code] ?? 0) + 1
          clearTimeout(timer)
          resolve()
        }
      })
      socket.on("close", () => {
        if (connected && !released) {
          stats.closed_by_server++
          if (answered) stats.answered_before_close++
        }
      })
      socket.release = () => {
        released = true
        socket.destroy()
      }
      sockets.push(socket)
    })
  await Promise.all(Array.from({ length: count }, one))
  return {
    /** Closes every connection still open. */
    release: () => {
      for (const s of sockets) s.release()
    },
    /** The counts so far (see the file comment). */
    report: () => ({ ...stats, connect_failed: { ...stats.connect_failed } })
  }
}
