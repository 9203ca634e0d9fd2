/**
 * The mounted app's own listener: each request is one fiber started with the request and its scope
 * already in its context, and the app still sees what the platform's server gives it (request scope,
 * ejected scopes, pre-response handlers, cookies, tracing), and a drain closes connections it answers.
 */
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Option, Scope, Stream, Supervisor } from "effect"
import { serveHttpApp } from "../../../src/layers/server/BoundedServer.js"
import type { BoundedServerShape } from "../../../src/services/server/BoundedServer.js"
import { connect, parseResponse, request, waitUntil } from "../../support/rawHttp.js"

let serverCount = 0
const uniqueName = (label: string) => `test-listener-${label}-${process.pid}-${serverCount++}`

const portOf = (server: BoundedServerShape): number => {
  if (server.address._tag !== "Tcp") throw new Error("expected a TCP address")
  return server.address.port
}

/** Records, for every fiber started under it, whether its starting context already held a request and a scope. */
class StartContexts extends Supervisor.AbstractSupervisor<ReadonlyArray<boolean>> {
  readonly started: Array<boolean> = []
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart<R>(context: Context.Context<R>) {
    const unsafe = Context.unsafeMake<unknown>(context.unsafeMap)
    this.started.push(Option.isSome(Context.getOption(unsafe, HttpServerRequest.HttpServerRequest)) && Option.isSome(Context.getOption(unsafe, Scope.Scope)))
  }
}

describe("HttpAppListener", () => {
  it.scopedLive("starts each request fiber with the request and its scope in its context: no context rewrites before the app runs", () =>
    Effect.gen(function*() {
      const supervisor = new StartContexts()
      const app = HttpRouter.empty.pipe(HttpRouter.get("/hello", HttpServerResponse.json({ hello: "world" })))
      const server = yield* serveHttpApp({ name: uniqueName("context") }, app).pipe(Effect.supervised(supervisor))
      const port = portOf(server)
      for (let i = 0; i < 5; i++) expect((yield* Effect.promise(() => request(port, "/hello"))).status).toBe(200)
      // The platform's handler starts its fiber with the server's context and provides the request after.
      expect(supervisor.started.filter((ready) => ready).length).toBe(5)
    }))

  it.scopedLive("closes the request scope after the response, and leaves an ejected one to its owner", () =>
    Effect.gen(function*() {
      const closed = yield* Deferred.make<void>()
      const ejected = yield* Deferred.make<Scope.Scope>()
      const ejectedClosed = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/scoped", Effect.as(Effect.addFinalizer(() => Deferred.succeed(closed, undefined)), HttpServerResponse.text("scoped"))),
        HttpRouter.get(
          "/ejected",
          Effect.gen(function*() {
            const scope = yield* Scope.Scope
            yield* Scope.addFinalizer(scope, Deferred.succeed(ejectedClosed, undefined))
            // Ejected: the scope is now its owner's to close (a streamed body's, say), not the request's.
            HttpApp.ejectDefaultScopeClose(scope)
            yield* Deferred.succeed(ejected, scope)
            return HttpServerResponse.text("ejected")
          })
        )
      )
      const server = yield* serveHttpApp({ name: uniqueName("scope") }, app)
      const port = portOf(server)
      const scoped = yield* Effect.promise(() => request(port, "/scoped"))
      expect(scoped.body).toBe("scoped")
      yield* Deferred.await(closed).pipe(Effect.timeout("5 seconds"))
      expect((yield* Effect.promise(() => request(port, "/ejected"))).body).toBe("ejected")
      yield* Effect.sleep("100 millis")
      expect(yield* Deferred.isDone(ejectedClosed)).toBe(false)
      yield* Deferred.await(ejected)
    }))

  it.scopedLive("runs pre-response handlers and writes cookies, for the app's answers and for the platform's 404", () =>
    Effect.gen(function*() {
      const stamp = HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeader(response, "x-stamped", "yes")))
      const app = Effect.zipRight(
        stamp,
        HttpRouter.empty.pipe(
          HttpRouter.get("/cookie", HttpServerResponse.text("ok").pipe(HttpServerResponse.unsafeSetCookie("session", "abc", { path: "/" }), Effect.succeed))
        )
      )
      const server = yield* serveHttpApp({ name: uniqueName("pre") }, app)
      const port = portOf(server)
      const ok = yield* Effect.promise(() => request(port, "/cookie"))
      expect(ok.status).toBe(200)
      expect(ok.headers["x-stamped"]).toBe("yes")
      expect(ok.headers["set-cookie"]).toBe("session=abc; Path=/")
      const missing = yield* Effect.promise(() => request(port, "/nope"))
      expect(missing.status).toBe(404)
      expect(missing.headers["x-stamped"]).toBe("yes")
    }))

  it.scopedLive("opens a server span per request only when tracing is on, parented by the caller's traceparent", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/span",
          Effect.map(Effect.option(Effect.currentSpan), (span) =>
            HttpServerResponse.unsafeJson(Option.match(span, {
              onNone: () => ({ span: null }),
              onSome: (s) => ({ span: s.name, trace: s.traceId, kind: s.kind, method: s.attributes.get("http.request.method") })
            })))
        )
      )
      const traced = yield* serveHttpApp({ name: uniqueName("traced") }, app, { tracing: true })
      const plain = yield* serveHttpApp({ name: uniqueName("plain") }, app)
      const traceId = "0af7651916cd43dd8448eb211c80319c"
      const headers = { traceparent: `00-${traceId}-b7ad6b7169203331-01` }
      const withSpan = yield* Effect.promise(() => request(portOf(traced), "/span", { headers }))
      expect(JSON.parse(withSpan.body)).toEqual({ span: "http.server GET", trace: traceId, kind: "server", method: "GET" })
      const without = yield* Effect.promise(() => request(portOf(plain), "/span", { headers }))
      expect(JSON.parse(without.body)).toEqual({ span: null })
    }))

  it.scopedLive("a client that leaves in the middle of a streamed body ends the stream: its finalizer runs, the permit is back", () =>
    Effect.gen(function*() {
      const ended = yield* Deferred.make<void>()
      const endless = Stream.concat(Stream.make(new TextEncoder().encode("first\n")), Stream.never).pipe(
        Stream.ensuring(Deferred.succeed(ended, undefined))
      )
      const app = HttpRouter.empty.pipe(HttpRouter.get("/stream", Effect.succeed(HttpServerResponse.stream(endless, { contentType: "text/plain" }))))
      const server = yield* serveHttpApp({ name: uniqueName("stream-abort"), maxInFlight: 1 }, app)
      const socket = yield* Effect.promise(() => connect(portOf(server)))
      const firstChunk = new Promise<void>((resolve) => socket.once("data", () => resolve()))
      socket.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.promise(() => firstChunk)
      socket.destroy()
      yield* Deferred.await(ended).pipe(Effect.timeout("5 seconds"))
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 0))
      expect((yield* server.metrics).handler_errors_total).toBe(0)
    }))

  it.live("a response written while the server drains closes its keep-alive connection", () =>
    Effect.gen(function*() {
      const socketAndReply = yield* Effect.scoped(
        Effect.gen(function*() {
          const app = HttpRouter.empty.pipe(HttpRouter.get("/slow", Effect.as(Effect.sleep("300 millis"), HttpServerResponse.text("done"))))
          const server = yield* serveHttpApp({ name: uniqueName("drain"), shutdownGraceMs: 3_000 }, app)
          const socket = yield* Effect.promise(() => connect(portOf(server)))
          let data = ""
          socket.setEncoding("latin1")
          socket.on("data", (chunk: string) => {
            data += chunk
          })
          // HTTP/1.1 without `Connection: close`: a keep-alive request.
          socket.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
          yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
          return { socket, reply: () => data }
        })
      )
      const { socket, reply } = socketAndReply
      socket.destroy()
      const response = parseResponse(reply())
      expect(response.status).toBe(200)
      expect(response.body).toBe("done")
      expect(response.headers["connection"]).toBe("close")
    }))
})
