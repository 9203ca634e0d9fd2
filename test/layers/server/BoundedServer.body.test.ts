/**
 * Request bodies are bounded as they stream, in both interfaces: a chunked body past `maxBodyBytes`
 * gets 413 with `Connection: close` at once, whether the handler reads it or not; a response written
 * before the body has arrived closes the connection instead of reading and discarding the rest.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import { serveHandler, serveHttpApp } from "../../../src/layers/server/BoundedServer.js"
import { BoundedResponse } from "../../../src/services/server/BoundedHttp.js"
import type { BoundedServerShape } from "../../../src/services/server/BoundedServer.js"
import { connect, parseResponse, readUntilClose, request, streamChunkedBody } from "../../support/rawHttp.js"

let serverCount = 0
const uniqueName = (label: string) => `test-body-${label}-${process.pid}-${serverCount++}`

const portOf = (server: BoundedServerShape): number => {
  if (server.address._tag !== "Tcp") throw new Error("expected a TCP address")
  return server.address.port
}

/** What a route does with the body: never reads it (and is slow), reads it, or answers at once. */
type Behaviour = "ignores" | "reads" | "answers"

const maxBodyBytes = 64 * 1024
const gib = 1024 * 1024 * 1024

/** The same three routes through either interface. */
const serve = (iface: "handler" | "httpapp"): Effect.Effect<BoundedServerShape, unknown, Scope.Scope> =>
  iface === "handler"
    ? serveHandler({ name: uniqueName(iface), maxBodyBytes }, (req) => {
      const behaviour = req.path.slice(1) as Behaviour | string
      if (behaviour === "ignores") return Effect.as(Effect.sleep("5 seconds"), BoundedResponse.json({ slept: true }))
      if (behaviour === "reads") return Effect.map(req.body, (bytes) => BoundedResponse.json({ size: bytes.length }))
      return Effect.succeed(BoundedResponse.json({ answered: true }))
    })
    : serveHttpApp(
      { name: uniqueName(iface), maxBodyBytes },
      HttpRouter.empty.pipe(
        HttpRouter.post("/ignores", Effect.as(Effect.sleep("5 seconds"), HttpServerResponse.unsafeJson({ slept: true }))),
        HttpRouter.post(
          "/reads",
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) =>
            Effect.map(req.arrayBuffer, (bytes) => HttpServerResponse.unsafeJson({ size: bytes.byteLength })))
        ),
        HttpRouter.post("/answers", Effect.succeed(HttpServerResponse.unsafeJson({ answered: true })))
      )
    )

/** Sends a chunked POST to `path` and keeps streaming up to 1 GiB; what came back, and how fast. */
const streamTo = (port: number, path: string) =>
  Effect.promise(async () => {
    const socket = await connect(port)
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`)
    const written = streamChunkedBody(socket, gib)
    const reply = await readUntilClose(socket, 3_000)
    socket.destroy()
    return { ...reply, written: await written }
  })

describe.each(["handler", "httpapp"] as const)("BoundedServer %s interface: bodies bounded as they stream", (iface) => {
  it.scopedLive("answers 413 with Connection: close and closes as soon as a chunked body crosses the limit, though the handler never reads it", () =>
    Effect.gen(function*() {
      const server = yield* serve(iface)
      const { data, closed, elapsedMs, written } = yield* streamTo(portOf(server), "/ignores")
      expect(closed).toBe(true)
      expect(elapsedMs).toBeLessThan(1_500)
      const response = parseResponse(data)
      expect(response.status).toBe(413)
      expect(response.headers["connection"]).toBe("close")
      expect(JSON.parse(response.body)).toMatchObject({ error: "body_too_large", max_body_bytes: maxBodyBytes })
      // The server stopped reading at the limit: what the client got out is kernel buffers, not 1 GiB.
      expect(written).toBeLessThan(64 * 1024 * 1024)
      expect((yield* server.metrics).client_errors_total).toBe(1)
    }))

  it.scopedLive("answers 413 with Connection: close and closes when the handler reads a chunked body past the limit", () =>
    Effect.gen(function*() {
      const server = yield* serve(iface)
      const { data, closed, elapsedMs } = yield* streamTo(portOf(server), "/reads")
      expect(closed).toBe(true)
      expect(elapsedMs).toBeLessThan(1_500)
      const response = parseResponse(data)
      expect(response.status).toBe(413)
      expect(response.headers["connection"]).toBe("close")
    }))

  it.scopedLive("closes the connection after a response written before the body arrived, instead of reading and discarding the rest", () =>
    Effect.gen(function*() {
      const server = yield* serve(iface)
      const { data, closed, elapsedMs, written } = yield* streamTo(portOf(server), "/answers")
      expect(closed).toBe(true)
      expect(elapsedMs).toBeLessThan(1_500)
      const response = parseResponse(data)
      expect(response.headers["connection"]).toBe("close")
      expect(response.status === 200 || response.status === 413).toBe(true)
      expect(written).toBeLessThan(64 * 1024 * 1024)
    }))

  it.scopedLive("keeps a connection alive after a complete body within the limit", () =>
    Effect.gen(function*() {
      const server = yield* serve(iface)
      const socket = yield* Effect.promise(() => connect(portOf(server)))
      const body = "z".repeat(1_000)
      const twice = `POST /reads HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        `POST /reads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3e8\r\n${body}\r\n0\r\n\r\n`
      socket.write(twice)
      const { data, closed } = yield* Effect.promise(() => readUntilClose(socket, 3_000))
      expect(closed).toBe(true)
      const first = parseResponse(data)
      expect(first.status).toBe(200)
      expect(first.headers["connection"]).toBe("keep-alive")
      expect(data.split("HTTP/1.1 200").length - 1).toBe(2)
      expect((yield* Effect.promise(() => request(portOf(server), "/answers", { method: "POST", body }))).status).toBe(200)
    }))
})
