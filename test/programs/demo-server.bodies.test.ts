/**
 * The demo server bounds request bodies as they stream: a 1 GiB chunked body is never read and
 * discarded; the connection is answered and closed as soon as the server has what it needs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startDemo } from "../support/demoProcess.js"
import { connect, parseResponse, readUntilClose, request, streamChunkedBody } from "../support/rawHttp.js"

describe.each(["handler", "httpapp"] as const)("demo server through the %s interface: request bodies", (iface) => {
  it.scopedLive("answers a 1 GiB chunked body with Connection: close and closes at once, without reading it", () =>
    Effect.gen(function*() {
      const demo = yield* startDemo(["--interface", iface])
      const socket = yield* Effect.promise(() => connect(demo.port))
      socket.write("GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
      const written = streamChunkedBody(socket, 1024 * 1024 * 1024)
      const { data, closed, elapsedMs } = yield* Effect.promise(() => readUntilClose(socket, 3_000))
      socket.destroy()
      expect(closed).toBe(true)
      expect(elapsedMs).toBeLessThan(2_500)
      const response = parseResponse(data)
      expect(response.headers["connection"]).toBe("close")
      expect([200, 413]).toContain(response.status)
      expect(yield* Effect.promise(() => written)).toBeLessThan(64 * 1024 * 1024)
    }))

  it.scopedLive("lets a client that reads only after writing for a while still read the answer (no reset first)", () =>
    Effect.gen(function*() {
      const demo = yield* startDemo(["--interface", iface])
      const socket = yield* Effect.promise(() => connect(demo.port))
      socket.pause()
      socket.write("GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
      const written = streamChunkedBody(socket, 1024 * 1024 * 1024)
      // The server answers and closes meanwhile; a reset would make these writes fail and the answer unreadable.
      yield* Effect.sleep("150 millis")
      const reading = readUntilClose(socket, 3_000)
      socket.resume()
      const { data, closed } = yield* Effect.promise(() => reading)
      socket.destroy()
      expect(closed).toBe(true)
      expect(parseResponse(data).headers["connection"]).toBe("close")
      expect(yield* Effect.promise(() => written)).toBeLessThan(64 * 1024 * 1024)
    }))

  it.scopedLive("answers a malformed path as a client error, never a 500", () =>
    Effect.gen(function*() {
      const demo = yield* startDemo(["--interface", iface])
      const response = yield* Effect.promise(() => request(demo.port, "/hello%E0%A4%A"))
      expect(response.status).toBeGreaterThanOrEqual(400)
      expect(response.status).toBeLessThan(500)
    }))
})
