/**
 * Refused connections cost the server nothing that lasts: each gets its 503 and its descriptor is
 * released as soon as the reply is written, even when the peer keeps its side open.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { serveHandler } from "../../../src/layers/server/BoundedServer.js"
import { BoundedResponse } from "../../../src/services/server/BoundedHttp.js"
import { connect, waitUntil } from "../../support/rawHttp.js"

const openDescriptors = (): number => Fs.readdirSync("/proc/self/fd").length

/** A client that never closes its side: it keeps sending nothing, and ignores the server's FIN. */
const stubbornClient = (port: number) =>
  new Promise<{ socket: Net.Socket; reply: Promise<string> }>((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port, allowHalfOpen: true })
    socket.once("error", reject)
    socket.once("connect", () => {
      socket.removeListener("error", reject)
      socket.on("error", () => {})
      let data = ""
      socket.setEncoding("latin1")
      socket.on("data", (chunk: string) => {
        data += chunk
      })
      const reply = new Promise<string>((done) => {
        socket.on("data", () => {
          if (data.includes("\r\n\r\n")) done(data)
        })
        socket.once("close", () => done(data))
      })
      socket.write("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
      resolve({ socket, reply })
    })
  })

describe("BoundedServer refused connections", () => {
  it.scopedLive("releases a refused socket's descriptor as soon as its 503 is written, even when the peer keeps its side open", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const server = yield* serveHandler({ name: `test-flood-${process.pid}`, maxConnections: 2 }, () =>
        Effect.as(Deferred.await(gate), BoundedResponse.json({ ok: true })))
      if (server.address._tag !== "Tcp") throw new Error("expected a TCP address")
      const port = server.address.port
      // Both permits held by requests in progress: nothing idle to reclaim, every newcomer is refused.
      const held = yield* Effect.promise(() => Promise.all([connect(port), connect(port)]))
      for (const socket of held) socket.write("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 2))

      const baseline = openDescriptors()
      const flood = 100
      const clients = yield* Effect.promise(() => Promise.all(Array.from({ length: flood }, () => stubbornClient(port))))
      const replies = yield* Effect.promise(() => Promise.all(clients.map((client) => client.reply)))
      expect(replies.every((reply) => reply.startsWith("HTTP/1.1 503 Service Unavailable\r\n"))).toBe(true)
      expect((yield* server.metrics).rejected_connections_total).toBe(flood)

      // What the server still holds: every descriptor beyond the baseline that is not a client's own.
      const serverHeld = () => openDescriptors() - baseline - clients.filter((client) => !client.socket.destroyed).length
      const started = Date.now()
      yield* Effect.promise(() => waitUntil(() => serverHeld() <= 2, 1_000))
      expect(Date.now() - started).toBeLessThan(500)

      for (const client of clients) client.socket.destroy()
      for (const socket of held) socket.destroy()
    }))
})
