import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Logger, Ref, Schema, TestClock } from "effect"
import { serveHandler } from "../../../src/layers/server/BoundedServer.js"
import { BoundedResponse, type RequestHandler } from "../../../src/services/server/BoundedHttp.js"
import { ServerMetricsSnapshot, decodeBoundedServerConfig } from "../../../src/services/server/BoundedServer.js"
import { connect, get, keepAliveAgent, parseResponse, readUntilClose, request, waitUntil } from "../../support/rawHttp.js"

let serverCount = 0
const uniqueName = (label: string) => `test-${label}-${process.pid}-${serverCount++}`

const portOf = (address: { readonly _tag: string; readonly port?: number }): number => {
  if (address._tag !== "Tcp" || address.port === undefined) throw new Error("expected a TCP address")
  return address.port
}

const hello: RequestHandler = () => Effect.succeed(BoundedResponse.json({ hello: "world" }))

describe("BoundedServer handler interface: connection permits", () => {
  it.scopedLive("answers a complete 503 before parsing and closes, without running the handler, when all connection permits are held by requests in progress", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const server = yield* serveHandler({ name: uniqueName("conn"), maxConnections: 2 }, (req) =>
        Effect.zipRight(
          Ref.update(runs, (n) => n + 1),
          Effect.as(req.path === "/block" ? Deferred.await(gate) : Effect.void, BoundedResponse.json({ ok: true }))
        ))
      const port = portOf(server.address)
      const held = yield* Effect.promise(() => Promise.all([connect(port), connect(port)]))
      for (const socket of held) socket.write("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 2))
      const third = yield* Effect.promise(() => connect(port))
      third.write("GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
      const { data, closed } = yield* Effect.promise(() => readUntilClose(third))
      expect(closed).toBe(true)
      expect(data).toBe(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n" +
          "Content-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"error\":\"over_capacity\"}"
      )
      expect(yield* Ref.get(runs)).toBe(2)
      const metrics = yield* server.metrics
      expect(metrics.rejected_connections_total).toBe(1)
      expect(metrics.accepted_total).toBe(2)
      for (const socket of held) socket.destroy()
      // The permits come back: a new connection is served.
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).active_connections === 0))
      const after = yield* Effect.promise(() => request(port, "/x"))
      expect(after.status).toBe(200)
      expect(yield* Ref.get(runs)).toBe(3)
    }))

  it.scopedLive("closes the connection idle longest to admit a new one when idle connections hold every permit", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("idle"), maxConnections: 3 }, hello)
      const port = portOf(server.address)
      // One never sends a request, two are keep-alive connections after a response; oldest idle first.
      const silent = yield* Effect.promise(() => connect(port))
      const keptAlive = yield* Effect.promise(() => Promise.all([connect(port), connect(port)]))
      for (const socket of keptAlive) socket.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).requests_total === 2))
      const silentClosed = readUntilClose(silent, 2_000)
      const started = Date.now()
      const operator = yield* Effect.promise(() => request(port, "/hello"))
      expect(operator.status).toBe(200)
      expect(Date.now() - started).toBeLessThan(1_000)
      expect((yield* Effect.promise(() => silentClosed)).closed).toBe(true)
      expect((yield* server.metrics).rejected_connections_total).toBe(0)
      for (const socket of keptAlive) socket.destroy()
    }))
})

describe("BoundedServer handler interface: request permits", () => {
  it.scopedLive("answers 503 at once without running the handler when all request permits are held", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const server = yield* serveHandler({ name: uniqueName("inflight"), maxConnections: 8, maxInFlight: 1 }, (req) =>
        Effect.gen(function*() {
          yield* Ref.update(runs, (n) => n + 1)
          if (req.path === "/block") yield* Deferred.await(gate)
          return BoundedResponse.json({ path: req.path })
        }))
      const port = portOf(server.address)
      const blocked = Effect.runPromise(Effect.promise(() => request(port, "/block")))
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      const started = Date.now()
      const refused = yield* Effect.promise(() => request(port, "/other"))
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(refused.status).toBe(503)
      expect(refused.headers["retry-after"]).toBe("1")
      expect(yield* Ref.get(runs)).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Effect.promise(() => blocked)).status).toBe(200)
      expect((yield* server.metrics).rejected_requests_total).toBe(1)
    }))

  it.scopedLive("releases the permit however the run ends: defect, timeout, client abort", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler(
        { name: uniqueName("release"), maxConnections: 8, maxInFlight: 1, handlerTimeoutMs: 100 },
        (req) => {
          switch (req.path) {
            case "/defect":
              return Effect.die(new Error("boom"))
            case "/slow":
              return Effect.as(Effect.sleep("1 hour"), BoundedResponse.json({}))
            default:
              return Effect.succeed(BoundedResponse.json({ ok: true }))
          }
        }
      )
      const port = portOf(server.address)
      expect((yield* Effect.promise(() => request(port, "/defect"))).status).toBe(500)
      expect((yield* Effect.promise(() => request(port, "/ok"))).status).toBe(200)
      expect((yield* Effect.promise(() => request(port, "/slow"))).status).toBe(504)
      expect((yield* Effect.promise(() => request(port, "/ok"))).status).toBe(200)
      const socket = yield* Effect.promise(() => connect(port))
      socket.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      socket.destroy()
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 0))
      expect((yield* Effect.promise(() => request(port, "/ok"))).status).toBe(200)
    }))
})

describe("BoundedServer handler interface: deadlines", () => {
  it.scopedLive("interrupts a handler past its deadline, runs its finalizers, and answers 504", () =>
    Effect.gen(function*() {
      const finalized = yield* Deferred.make<void>()
      const server = yield* serveHandler({ name: uniqueName("deadline"), handlerTimeoutMs: 150 }, () =>
        Effect.sleep("1 hour").pipe(
          Effect.as(BoundedResponse.json({ late: true })),
          Effect.ensuring(Deferred.succeed(finalized, undefined))
        ))
      const started = Date.now()
      const response = yield* Effect.promise(() => request(portOf(server.address), "/slow"))
      const elapsed = Date.now() - started
      expect(response.status).toBe(504)
      expect(JSON.parse(response.body)).toMatchObject({ error: "handler_timeout", timeout_ms: 150 })
      expect(elapsed).toBeGreaterThanOrEqual(150)
      expect(yield* Deferred.isDone(finalized)).toBe(true)
      expect((yield* server.metrics).handler_timeouts_total).toBe(1)
    }))

  it.scoped("enforces the deadline on the TestClock: not a tick before, and within two sweeps after", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("testclock"), handlerTimeoutMs: 10_000 }, () =>
        Effect.as(Effect.sleep("1 hour"), BoundedResponse.json({ late: true })))
      const port = portOf(server.address)
      const pending = request(port, "/slow")
      let settled = false
      void pending.then(() => {
        settled = true
      })
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      yield* TestClock.adjust("9999 millis")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      expect(settled).toBe(false)
      // Sweeps every 50 ms: the deadline fires at most two sweeps late.
      yield* TestClock.adjust("101 millis")
      const response = yield* Effect.promise(() => pending)
      expect(response.status).toBe(504)
    }))

  it.scopedLive("answers 408 and closes a connection whose headers stall", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("stall"), headersTimeoutMs: 300 }, hello)
      const socket = yield* Effect.promise(() => connect(portOf(server.address)))
      socket.write("GET /hello HTTP/1.1\r\nHost: x\r\n")
      const { data, closed, elapsedMs } = yield* Effect.promise(() => readUntilClose(socket, 5_000))
      expect(closed).toBe(true)
      expect(parseResponse(data).status).toBe(408)
      expect(elapsedMs).toBeGreaterThanOrEqual(250)
      expect(elapsedMs).toBeLessThan(2_000)
    }))

  it.scopedLive("does not let a trickling client extend the headers deadline", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("trickle"), headersTimeoutMs: 300 }, hello)
      const socket = yield* Effect.promise(() => connect(portOf(server.address)))
      socket.write("GET /hello HTTP/1.1\r\n")
      const trickle = setInterval(() => {
        if (!socket.destroyed) socket.write("X-A: b\r\n")
      }, 40)
      const { data, closed, elapsedMs } = yield* Effect.promise(() => readUntilClose(socket, 5_000))
      clearInterval(trickle)
      expect(closed).toBe(true)
      expect(parseResponse(data).status).toBe(408)
      expect(elapsedMs).toBeLessThan(2_000)
      expect((yield* server.metrics).client_errors_total).toBeGreaterThanOrEqual(1)
    }))

  it.scopedLive("answers 413 to a declared or streamed body over maxBodyBytes", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const server = yield* serveHandler({ name: uniqueName("body"), maxBodyBytes: 1_000 }, (req) =>
        Ref.update(runs, (n) => n + 1).pipe(
          Effect.zipRight(req.body),
          Effect.map((bytes) => BoundedResponse.json({ size: bytes.length }))
        ))
      const port = portOf(server.address)
      const declared = yield* Effect.promise(() => request(port, "/upload", { method: "POST", body: "x".repeat(2_000) }))
      expect(declared.status).toBe(413)
      expect(yield* Ref.get(runs)).toBe(0)
      const socket = yield* Effect.promise(() => connect(port))
      socket.write("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
      for (let i = 0; i < 3; i++) socket.write(`200\r\n${"y".repeat(512)}\r\n`)
      const streamed = parseResponse((yield* Effect.promise(() => readUntilClose(socket))).data)
      expect(streamed.status).toBe(413)
      const fits = yield* Effect.promise(() => request(port, "/upload", { method: "POST", body: "z".repeat(500) }))
      expect(JSON.parse(fits.body)).toEqual({ size: 500 })
    }))
})

describe("BoundedServer handler interface: the request", () => {
  it.scopedLive("hands the handler the method, path, query, headers by lower-case name, and the body", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("request") }, (req) =>
        Effect.map(req.text, (body) =>
          BoundedResponse.json({
            method: req.method,
            path: req.path,
            q: req.query.get("q"),
            probe: req.headers["x-corral-probe"] ?? null,
            body
          })))
      const response = yield* Effect.promise(() =>
        request(portOf(server.address), "/echo?q=1", { method: "POST", headers: { "X-Corral-Probe": "one" }, body: "hi" }))
      expect(response.status).toBe(200)
      expect(JSON.parse(response.body)).toEqual({ method: "POST", path: "/echo", q: "1", probe: "one", body: "hi" })
    }))
})

describe("BoundedServer handler interface: typed defects", () => {
  it.scopedLive("turns thousands of defects into 500s with a request id, and keeps serving", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("defects"), maxConnections: 16 }, (req) =>
        req.path === "/throw"
          ? Effect.sync(() => {
            throw new Error("handler threw")
          })
          : req.path === "/throw-sync"
          ? (() => {
            throw new Error("handler function threw")
          })()
          : Effect.succeed(BoundedResponse.json({ ok: true })))
      const port = portOf(server.address)
      const agent = keepAliveAgent(8)
      const total = 2_000
      const responses = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: total }, (_, i) => get(port, i % 2 === 0 ? "/throw" : "/throw-sync", agent)))
      )
      const ids = new Set<string>()
      for (const response of responses) {
        expect(response.status).toBe(500)
        const body = JSON.parse(response.body) as { error: string; request_id: string }
        expect(body.error).toBe("handler_defect")
        ids.add(body.request_id)
      }
      expect(ids.size).toBe(total)
      for (let i = 0; i < 20; i++) expect((yield* Effect.promise(() => get(port, "/hello", agent))).status).toBe(200)
      agent.destroy()
      const metrics = yield* server.metrics
      expect(metrics.handler_errors_total).toBe(total)
      expect(metrics.last_handler_error?.message).toMatch(/GET \/throw(-sync)?: Error: handler (function )?threw/)
    }).pipe(Logger.withMinimumLogLevel("None" as never)))

  it.scopedLive("logs one structured line per defect with method, path, request id and cause", () =>
    Effect.gen(function*() {
      const lines = yield* Ref.make<ReadonlyArray<{ message: unknown; annotations: Record<string, unknown>; cause: string }>>([])
      const capture = Logger.make(({ annotations, cause, message }) => {
        const entry = { message, annotations: Object.fromEntries(annotations), cause: String(cause) }
        Effect.runSync(Ref.update(lines, (all) => [...all, entry]))
      })
      const server = yield* serveHandler({ name: uniqueName("log") }, () => Effect.die(new Error("broken state"))).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
      const response = yield* Effect.promise(() => request(portOf(server.address), "/deep/path?x=1"))
      const requestId = (JSON.parse(response.body) as { request_id: string }).request_id
      const logged = yield* Ref.get(lines)
      expect(logged).toHaveLength(1)
      expect(logged[0]?.annotations).toMatchObject({ method: "GET", path: "/deep/path", request_id: requestId })
      expect(logged[0]?.cause).toContain("broken state")
    }))
})

describe("BoundedServer handler interface: route alarms", () => {
  it.scopedLive("repeated defects on one route turn readiness red with the route named, until it recovers", () =>
    Effect.gen(function*() {
      const broken = yield* Ref.make(true)
      const server = yield* serveHandler({ name: uniqueName("alarm") }, (req) =>
        req.path === "/fragile"
          ? Effect.flatMap(Ref.get(broken), (isBroken) => isBroken ? Effect.die(new Error("poisoned")) : Effect.succeed(BoundedResponse.json({ ok: true })))
          : Effect.succeed(BoundedResponse.json({ ok: true })))
      const port = portOf(server.address)
      for (let i = 0; i < 4; i++) yield* Effect.promise(() => request(port, "/fragile"))
      expect((yield* server.readiness).ready).toBe(true)
      yield* Effect.promise(() => request(port, "/fragile"))
      const red = yield* server.readiness
      expect(red.ready).toBe(false)
      expect(red.alarmed_routes.map((route) => route.route)).toEqual(["/fragile"])
      // Other routes keep working; the broken one is visible, not silent.
      expect((yield* Effect.promise(() => request(port, "/hello"))).status).toBe(200)
      yield* Ref.set(broken, false)
      for (let i = 0; i < 3; i++) expect((yield* Effect.promise(() => request(port, "/fragile"))).status).toBe(200)
      expect(yield* server.readiness).toEqual({ ready: true, draining: false, alarmed_routes: [] })
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))))
})

describe("BoundedServer handler interface: drain", () => {
  it.live("lets in-flight requests finish within the grace, refuses new connections, closes idle keep-alive sockets", () =>
    Effect.gen(function*() {
      const { port, metrics, finished } = yield* Effect.scoped(
        Effect.gen(function*() {
          const server = yield* serveHandler({ name: uniqueName("drain"), shutdownGraceMs: 2_000 }, (req) =>
            req.path === "/slow" ? Effect.as(Effect.sleep("300 millis"), BoundedResponse.json({ done: true })) : hello(req))
          const port = portOf(server.address)
          const idle = yield* Effect.promise(() => connect(port))
          idle.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
          const idleClosed = readUntilClose(idle)
          const inFlight = request(port, "/slow")
          yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
          return { port, metrics: server.metrics, finished: Promise.all([inFlight, idleClosed]) }
        })
      )
      const [slow, idle] = yield* Effect.promise(() => finished)
      expect(slow.status).toBe(200)
      expect(JSON.parse(slow.body)).toEqual({ done: true })
      expect(idle.closed).toBe(true)
      expect(parseResponse(idle.data).status).toBe(200)
      const refused = yield* Effect.either(Effect.tryPromise(() => connect(port)))
      expect(refused._tag).toBe("Left")
      const final = yield* metrics
      expect(final.shutdown_drain_ms).toBeGreaterThanOrEqual(250)
      expect(final.active_connections).toBe(0)
    }))

  it.live("interrupts what outlives the grace, still answering its client, and runs its finalizers", () =>
    Effect.gen(function*() {
      const finalized = yield* Deferred.make<void>()
      const pending = yield* Effect.scoped(
        Effect.gen(function*() {
          const server = yield* serveHandler({ name: uniqueName("grace"), shutdownGraceMs: 100 }, () =>
            Effect.sleep("1 hour").pipe(Effect.as(BoundedResponse.json({})), Effect.ensuring(Deferred.succeed(finalized, undefined))))
          const inFlight = request(portOf(server.address), "/forever")
          yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
          return inFlight
        })
      )
      const response = yield* Effect.promise(() => pending)
      expect(response.status).toBe(503)
      expect(JSON.parse(response.body)).toEqual({ error: "shutting_down" })
      expect(yield* Deferred.isDone(finalized)).toBe(true)
    }))
})

describe("BoundedServer metrics and config", () => {
  it.scopedLive("keeps the seed's metrics as a typed snapshot", () =>
    Effect.gen(function*() {
      const server = yield* serveHandler({ name: uniqueName("metrics") }, hello)
      yield* Effect.promise(() => request(portOf(server.address), "/hello"))
      const snapshot = yield* server.metrics
      const decoded = Schema.decodeUnknownSync(ServerMetricsSnapshot)(JSON.parse(JSON.stringify(snapshot)))
      expect(decoded).toMatchObject({ accepted_total: 1, requests_total: 1, handler_errors_total: 0, last_handler_error: null })
    }))

  it.effect("names every invalid field of a config", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeBoundedServerConfig({ port: 70_000, maxConnections: 0, handlerTimeoutMs: "5s", extra: 1 }, "demo.json"))
      expect(error.message).toContain("demo.json")
      expect(error.issues.some((issue) => issue.startsWith("port:"))).toBe(true)
      expect(error.issues.some((issue) => issue.startsWith("maxConnections:"))).toBe(true)
      expect(error.issues.some((issue) => issue.startsWith("handlerTimeoutMs:"))).toBe(true)
      expect(error.issues.some((issue) => issue.startsWith("extra:"))).toBe(true)
      expect(error.issues.filter((issue) => issue.includes("Expected undefined"))).toEqual([])
    }))

  it.effect("defaults maxInFlight to maxConnections", () =>
    Effect.gen(function*() {
      const config = yield* decodeBoundedServerConfig({ maxConnections: 7 })
      expect(config).toMatchObject({ host: "127.0.0.1", port: 0, maxConnections: 7, maxInFlight: 7, headersTimeoutMs: 10_000 })
    }))
})


