import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, FiberRef, Logger, Ref, Schedule, Stream, Supervisor } from "effect"
import { serveHttpApp } from "../../../src/layers/server/BoundedServer.js"
import { connect, request, waitUntil } from "../../support/rawHttp.js"

let serverCount = 0
const uniqueName = (label: string) => `test-app-${label}-${process.pid}-${serverCount++}`

const portOf = (address: { readonly _tag: string; readonly port?: number }): number => {
  if (address._tag !== "Tcp" || address.port === undefined) throw new Error("expected a TCP address")
  return address.port
}

const quiet = Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))

/** Counts every fiber started under it (the request fibers of a server started under `Effect.supervised`). */
class FiberCounter extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart() {
    this.started++
  }
}

describe("BoundedServer mounted HttpApp", () => {
  it.scopedLive("serves an HttpRouter, with the platform's 404 for an unknown route", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(HttpRouter.get("/hello", HttpServerResponse.json({ hello: "world" })))
      const server = yield* serveHttpApp({ name: uniqueName("router") }, app)
      const port = portOf(server.address)
      const hello = yield* Effect.promise(() => request(port, "/hello"))
      expect(hello.status).toBe(200)
      expect(JSON.parse(hello.body)).toEqual({ hello: "world" })
      expect((yield* Effect.promise(() => request(port, "/nope"))).status).toBe(404)
      expect((yield* server.metrics).handler_errors_total).toBe(0)
    }))

  it.scopedLive("answers 503 without running the app when all request permits are held", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/block", Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.as(Deferred.await(gate), HttpServerResponse.empty()))),
        HttpRouter.get("/other", Effect.zipRight(Ref.update(runs, (n) => n + 1), HttpServerResponse.empty()))
      )
      const server = yield* serveHttpApp({ name: uniqueName("inflight"), maxInFlight: 1 }, app)
      const port = portOf(server.address)
      const blocked = request(port, "/block")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      const refused = yield* Effect.promise(() => request(port, "/other"))
      expect(refused.status).toBe(503)
      expect(refused.headers["retry-after"]).toBe("1")
      expect(yield* Ref.get(runs)).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Effect.promise(() => blocked)).status).toBe(204)
    }))

  it.scopedLive("interrupts an app past its deadline, runs its finalizers, and answers 504", () =>
    Effect.gen(function*() {
      const finalized = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/slow", Effect.sleep("1 hour").pipe(Effect.as(HttpServerResponse.empty()), Effect.ensuring(Deferred.succeed(finalized, undefined))))
      )
      const server = yield* serveHttpApp({ name: uniqueName("deadline"), handlerTimeoutMs: 150 }, app)
      const response = yield* Effect.promise(() => request(portOf(server.address), "/slow"))
      expect(response.status).toBe(504)
      expect(JSON.parse(response.body)).toMatchObject({ error: "handler_timeout", timeout_ms: 150 })
      expect(yield* Deferred.isDone(finalized)).toBe(true)
      expect((yield* server.metrics).handler_timeouts_total).toBe(1)
    }).pipe(quiet))

  it.scopedLive("turns defects into 500s with a request id, counted, and keeps serving", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/defect", Effect.die(new Error("app defect"))),
        HttpRouter.get("/hello", HttpServerResponse.json({ ok: true }))
      )
      const server = yield* serveHttpApp({ name: uniqueName("defect") }, app)
      const port = portOf(server.address)
      for (let i = 0; i < 50; i++) {
        const response = yield* Effect.promise(() => request(port, "/defect"))
        expect(response.status).toBe(500)
        expect(JSON.parse(response.body)).toMatchObject({ error: "handler_defect" })
        expect((JSON.parse(response.body) as { request_id: string }).request_id).toMatch(/^[0-9a-f]+-[0-9a-z]+$/)
      }
      expect((yield* Effect.promise(() => request(port, "/hello"))).status).toBe(200)
      const metrics = yield* server.metrics
      expect(metrics.handler_errors_total).toBe(50)
      expect((yield* server.readiness).alarmed_routes.map((r) => r.route)).toEqual(["/defect"])
    }).pipe(quiet))

  it.live("drains: an in-flight app finishes within the grace", () =>
    Effect.gen(function*() {
      const pending = yield* Effect.scoped(
        Effect.gen(function*() {
          const app = HttpRouter.empty.pipe(HttpRouter.get("/slow", Effect.as(Effect.sleep("200 millis"), HttpServerResponse.text("done"))))
          const server = yield* serveHttpApp({ name: uniqueName("drain"), shutdownGraceMs: 2_000 }, app)
          const inFlight = request(portOf(server.address), "/slow")
          yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
          return inFlight
        })
      )
      const response = yield* Effect.promise(() => pending)
      expect(response.status).toBe(200)
      expect(response.body).toBe("done")
    }))

  it.scopedLive("runs the app in the platform's own request fiber: one fiber per request, none forked by the server", () =>
    Effect.gen(function*() {
      const counter = new FiberCounter()
      const app = HttpRouter.empty.pipe(HttpRouter.get("/hello", HttpServerResponse.json({ hello: "world" })))
      const server = yield* serveHttpApp({ name: uniqueName("fibers") }, app).pipe(Effect.supervised(counter))
      const port = portOf(server.address)
      // The first request settles anything started lazily; the count is taken over the next ones.
      expect((yield* Effect.promise(() => request(port, "/hello"))).status).toBe(200)
      const before = counter.started
      for (let i = 0; i < 20; i++) expect((yield* Effect.promise(() => request(port, "/hello"))).status).toBe(200)
      expect(counter.started - before).toBe(20)
    }))

  it.scopedLive("a streamed body outlives the deadline once the app has answered", () =>
    Effect.gen(function*() {
      const chunks = Stream.fromSchedule(Schedule.spaced("60 millis")).pipe(
        Stream.take(6),
        Stream.map((n) => new TextEncoder().encode(`tick ${n}\n`))
      )
      const app = HttpRouter.empty.pipe(HttpRouter.get("/stream", Effect.succeed(HttpServerResponse.stream(chunks, { contentType: "text/plain" }))))
      const server = yield* serveHttpApp({ name: uniqueName("stream"), handlerTimeoutMs: 150 }, app)
      const response = yield* Effect.promise(() => request(portOf(server.address), "/stream"))
      expect(response.status).toBe(200)
      expect(Chunk.size(Chunk.fromIterable(response.body.matchAll(/tick \d/g)))).toBe(6)
      expect((yield* server.metrics).handler_timeouts_total).toBe(0)
    }))

  it.scopedLive("a client that leaves ends the app's run: finalizers run, the permit is back, nothing is counted as a failure", () =>
    Effect.gen(function*() {
      const finalized = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/slow", Effect.sleep("1 hour").pipe(Effect.as(HttpServerResponse.empty()), Effect.ensuring(Deferred.succeed(finalized, undefined)))),
        HttpRouter.get("/hello", HttpServerResponse.json({ ok: true }))
      )
      const server = yield* serveHttpApp({ name: uniqueName("abort"), maxInFlight: 1 }, app)
      const port = portOf(server.address)
      const socket = yield* Effect.promise(() => connect(port))
      socket.write("GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
      socket.destroy()
      yield* Deferred.await(finalized).pipe(Effect.timeout("5 seconds"))
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 0))
      expect((yield* Effect.promise(() => request(port, "/hello"))).status).toBe(200)
      expect((yield* server.metrics).handler_errors_total).toBe(0)
    }).pipe(quiet))

  it.scopedLive("the app sees the fiber refs its server was started with", () =>
    Effect.gen(function*() {
      const tenant = FiberRef.unsafeMake("none")
      const app = HttpRouter.empty.pipe(HttpRouter.get("/tenant", Effect.map(FiberRef.get(tenant), (value) => HttpServerResponse.text(value))))
      const server = yield* serveHttpApp({ name: uniqueName("refs") }, app).pipe(Effect.locally(tenant, "acme"))
      const response = yield* Effect.promise(() => request(portOf(server.address), "/tenant"))
      expect(response.status).toBe(200)
      expect(response.body).toBe("acme")
    }))

  it.scopedLive("an app that interrupts itself gave no answer: a counted 500 with a request id", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(HttpRouter.get("/gives-up", Effect.interrupt))
      const server = yield* serveHttpApp({ name: uniqueName("self-interrupt") }, app)
      const response = yield* Effect.promise(() => request(portOf(server.address), "/gives-up"))
      expect(response.status).toBe(500)
      expect(JSON.parse(response.body)).toMatchObject({ error: "handler_defect" })
      expect((yield* server.metrics).handler_errors_total).toBe(1)
    }).pipe(quiet))
})
