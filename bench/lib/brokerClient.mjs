// Broker wire for the fault campaign and the soak: frames (4-byte big-endian length + UTF-8 JSON, as
// src/layers/broker/BrokerFraming.ts), one hello on a fresh connection, and a raw exchange of
// arbitrary bytes that reports what came back. Every exchange settles within its deadline.
import * as net from "node:net"

/** `value` as one broker frame. */
export const encodeFrame = (value) => {
  const body = Buffer.from(typeof value === "string" ? value : JSON.stringify(value), "utf8")
  const frame = Buffer.allocUnsafe(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, 4)
  return frame
}

/** Splits a byte stream into frames; a body that is not JSON is returned as `{ unparsed }`. */
export const frameReader = () => {
  let buffer = Buffer.alloc(0)
  return (chunk) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
    const frames = []
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0)
      if (buffer.length < 4 + length) break
      const text = buffer.subarray(4, 4 + length).toString("utf8")
      try {
        frames.push(JSON.parse(text))
      } catch {
        frames.push({ unparsed: text.slice(0, 200) })
      }
      buffer = buffer.subarray(4 + length)
    }
    return frames
  }
}

/**
 * Connects to `socketPath`, writes `chunks` (Buffers, `pauseMs` apart), and collects reply frames
 * until `expect` frames came, the broker closed, or `timeoutMs` passed. Settles to
 * `{ frames, closedByPeer, timedOut, error? }`; the socket is always destroyed.
 */
export const rawExchange = (socketPath, chunks, { expect = 1, timeoutMs = 3_000, pauseMs = 0 } = {}) =>
  new Promise((resolve) => {
    const frames = []
    const read = frameReader()
    let settled = false
    const socket = net.createConnection(socketPath)
    const settle = (extra) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ frames, closedByPeer: false, timedOut: false, ...extra })
    }
    const timer = setTimeout(() => settle({ timedOut: true }), timeoutMs)
    socket.on("connect", async () => {
      for (const chunk of chunks) {
        if (settled) return
        socket.write(chunk)
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs))
      }
    })
    socket.on("data", (chunk) => {
      frames.push(...read(chunk))
      if (frames.length >= expect) settle({})
    })
    socket.on("end", () => settle({ closedByPeer: true }))
    socket.on("close", () => settle({ closedByPeer: true }))
    socket.on("error", (error) => settle({ error: error.code ?? error.message }))
  })

let helloCounter = 0

/** One hello for `service` on a fresh connection: `{ ok, code?, launched?, error?, ms }`. */
export const hello = async (socketPath, service, timeoutMs = 5_000) => {
  const t0 = performance.now()
  const r = await rawExchange(socketPath, [encodeFrame({ type: "hello", service, protocol: 1, request_id: `f${++helloCounter}` })], { timeoutMs })
  const ms = performance.now() - t0
  const reply = r.frames[0]
  if (reply === undefined) return { ok: false, error: r.error ?? (r.timedOut ? "timeout" : "closed_without_reply"), ms }
  if (reply.type === "hello.ok") return { ok: true, launched: reply.launched === true, ms }
  return { ok: false, code: reply.code ?? reply.type ?? "unknown", ms }
}
