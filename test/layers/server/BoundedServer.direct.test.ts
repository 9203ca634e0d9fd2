/**
 * The direct path of `serveHttpAppWithFastPath`: a route answered in plain code or by one Effect run keeps
 * the server's contract — over-capacity 503, 413, 504 at the deadline (while the body is still arriving,
 * and while the run is in its fiber), a counted 500 for a defect or a failure, drain answering every
 * accepted request — and tells the route once when each request ends.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Logger, Scope } from "effect"
import { type FastPath, serveHttpAppWithFastPath } from "../../../src/layers/server/BoundedServer.js"
import type { BoundedServerShape } from "../../../src/services/server/BoundedServer.js"
import { BoundedResponse } from "../../../src/services/server/BoundedHttp.js"
import { connect, parseResponse, readUntilClose, request, waitUntil } from "../../support/rawHttp.js"

const routeHeaders = { "x-route": "direct" }

/** A direct route on `/direct/{mode}` whose ends are counted; `gate` holds the `held` mode. */
const directRoute = (ended: { count: number }, gate: Deferred.Deferred<void>): FastPath<string, never> => ({
  matches: (_method, path) => path.startsWith("/direct/"),
  headers: routeHeaders,
  admit: (head) => {
    head.onEnd(() => {
      ended.count++
    })
    if (head.headers["x-refuse"] !== undefined) return BoundedResponse.json({ refused: true }, 403)
    return head.headers["x-admit-later"] !== undefined ? Effect.succeed(undefined) : undefined
  },
  handle: (request) => {
    switch (request.path) {
      case "/direct/now":
        return BoundedResponse.text(Buffer.from(request.body).toString("utf8"))
      case "/direct/fiber":
        return Effect.succeed(BoundedResponse.json({ bytes: request.body.length }))
      case "/direct/held":
        return Effect.as(Deferred.await(gate), BoundedResponse.json({ held: true }))
      case "/direct/never":
        return Effect.never
      case "/direct/fail":
        return Effect.fail("no")
      default:
        throw new Error("boom")
    }
  }
})

const quietly = Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))

const serve = (options: { handlerTimeoutMs?: number; maxConnections?: number; maxInFlight?: number; shutdownGraceMs?: number; maxBodyBytes?: number }) =>
  Effect.gen(function*() {
    const ended = { count: 0 }
    const gate = yield* Deferred.make<void>()
    const app = HttpRouter.empty.pipe(HttpRouter.get("/app", HttpServerResponse.json({ app: true })))
    const server = yield* serveHttpAppWithFastPath({ name: `test-direct-${process.pid}`, ...options }, app, directRoute(ended, gate))
    return { server, port: portOf(server), ended, gate }
  })

const portOf = (server: BoundedServerShape): number => {
  if (server.address._tag !== "Tcp") throw new Error("expected a TCP address")
  return server.address.port
}

describe("BoundedServer direct path", () => {
  it.scopedLive("answers in plain code, by one run, or refuses before the body; a defect or a failure is a counted 500", () =>
    Effect.gen(function*() {
      const { ended, port, server } = yield* serve({})
      const post = (path: string, headers: Record<string, string> = {}) =>
        Effect.promise(() => request(port, path, { method: "POST", body: "hello", headers }))
      const now = yield* post("/direct/now")
      expect([now.status, now.body]).toEqual([200, "hello"])
      const fiber = yield* post("/direct/fiber", { "x-admit-later": "1" })
      expect([fiber.status, JSON.parse(fiber.body)]).toEqual([200, { bytes: 5 }])
      const refused = yield* post("/direct/now", { "x-refuse": "1" })
      expect(refused.status).toBe(403)
      const defect = yield* post("/direct/defect")
      const failed = yield* post("/direct/fail")
      expect([defect.status, JSON.parse(defect.body).error, defect.headers["x-route"]]).toEqual([500, "handler_defect", "direct"])
      expect([failed.status, JSON.parse(failed.body).error]).toEqual([500, "handler_failure"])
      const app = yield* Effect.promise(() => request(port, "/app"))
      expect(app.status).toBe(200)
      const metrics = yield* server.metrics
      expect({ inFlight: metrics.in_flight, errors: metrics.handler_errors_total, ended: ended.count }).toEqual({ inFlight: 0, errors: 2, ended: 5 })
    }).pipe(quietly))

  it.scopedLive("answers 504 at the deadline whether the body is still arriving or the run is in its fiber", () =>
    Effect.gen(function*() {
      const { ended, port, server } = yield* serve({ handlerTimeoutMs: 150 })
      const stalled = yield* Effect.promise(() => connect(port))
      stalled.write("POST /direct/now HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
      const never = yield* Effect.promise(() => request(port, "/direct/never", { method: "POST", body: "x" }))
      const { data } = yield* Effect.promise(() => readUntilClose(stalled, 5_000))
      const reading = parseResponse(data)
      expect([reading.status, JSON.parse(reading.body).error, reading.headers["x-route"], reading.headers["connection"]]).toEqual([
        504,
        "handler_timeout",
        "direct",
        "close"
      ])
      expect([never.status, JSON.parse(never.body).error]).toEqual([504, "handler_timeout"])
      const metrics = yield* server.metrics
      expect({ inFlight: metrics.in_flight, timeouts: metrics.handler_timeouts_total, ended: ended.count }).toEqual({ inFlight: 0, timeouts: 2, ended: 2 })
    }).pipe(quietly))

  it.scopedLive("refuses over capacity and past the body limit with the route's headers, and ends a run whose client left", () =>
    Effect.gen(function*() {
      const { ended, gate, port, server } = yield* serve({ maxConnections: 8, maxInFlight: 1, maxBodyBytes: 16 })
      const held = Effect.runPromise(Effect.promise(() => request(port, "/direct/held", { method: "POST", body: "x" })))
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      const busy = yield* Effect.promise(() => request(port, "/direct/now", { method: "POST", body: "x" }))
      expect([busy.status, JSON.parse(busy.body).error, busy.headers["x-route"], busy.headers["retry-after"]]).toEqual([503, "over_capacity", "direct", "1"])
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Effect.promise(() => held)).status).toBe(200)

      const tooLarge = yield* Effect.promise(() => request(port, "/direct/now", { method: "POST", body: "x".repeat(17) }))
      expect([tooLarge.status, JSON.parse(tooLarge.body).error]).toEqual([413, "body_too_large"])
      const chunked = yield* Effect.promise(() => connect(port))
      chunked.write("POST /direct/now HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + "y".repeat(32) + "\r\n")
      const streamed = parseResponse((yield* Effect.promise(() => readUntilClose(chunked, 5_000))).data)
      expect([streamed.status, streamed.headers["x-route"]]).toEqual([413, "direct"])

      const leaving = yield* Effect.promise(() => connect(port))
      leaving.write("POST /direct/now HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      leaving.destroy()
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 0))
      // held, the chunked 413 and the one that left; the refused and the declared-too-large never started.
      expect(ended.count).toBe(3)
    }).pipe(quietly))

  it.scopedLive("drain lets a run finish within the grace and answers a request still reading its body", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { gate, port } = yield* Scope.extend(serve({ shutdownGraceMs: 300 }), scope)
      const held = Effect.runPromise(Effect.promise(() => request(port, "/direct/held", { method: "POST", body: "x" })))
      const reading = yield* Effect.promise(() => connect(port))
      reading.write("POST /direct/now HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
      const readingAnswer = readUntilClose(reading, 5_000)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      const closing = Effect.runPromise(Scope.close(scope, Exit.void))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Effect.promise(() => held)).status).toBe(200)
      const drained = parseResponse((yield* Effect.promise(() => readingAnswer)).data)
      expect([drained.status, JSON.parse(drained.body).error, drained.headers["x-route"]]).toEqual([503, "shutting_down", "direct"])
      yield* Effect.promise(() => closing)
    }).pipe(quietly))
})
