import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { makeModuleClient, ModuleClientLive } from "../../../src/layers/host/ModuleClient.js"
import { ModuleClient } from "../../../src/services/host/ModuleClient.js"
import { answerJson, answerText, refusedPort, startFakeModule, streamForever } from "../../support/fakeModule.js"

const limits = { timeoutMs: 2_000, maxResponseBytes: 65_536 }

/** Answers `{"n": <request number>}` after `delayMs`. */
const delayedJson = (delayMs: number) => {
  let n = 0
  return startFakeModule((_request, response) => {
    n += 1
    const answer = { n }
    setTimeout(() => answerJson(response, answer), delayMs)
  })
}

describe("ModuleClientLive", () => {
  it.scopedLive("reuses one keep-alive connection for 50 sequential calls", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(0)
      const client = yield* makeModuleClient()
      for (let i = 0; i < 50; i++) {
        const reply = yield* client.postJson(module.endpoint, "/v1/middleware/invoke", { i }, limits)
        expect(reply.status).toBe(200)
      }
      expect(module.requests).toHaveLength(50)
      expect(module.connections()).toBe(1)
    }))

  it.scopedLive("serves 200 calls at concurrency 8 over at most 8 connections", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(2)
      const client = yield* makeModuleClient()
      const replies = yield* Effect.all(
        Array.from({ length: 200 }, (_, i) => client.postJson(module.endpoint, "/invoke", { i }, limits)),
        { concurrency: 8 }
      )
      expect(replies.every((reply) => reply.status === 200)).toBe(true)
      expect(module.connections()).toBeGreaterThanOrEqual(1)
      expect(module.connections()).toBeLessThanOrEqual(8)
    }))

  it.scopedLive("opens at most 32 sockets to one endpoint by default; more calls queue", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(50)
      const client = yield* makeModuleClient()
      const replies = yield* Effect.all(
        Array.from({ length: 80 }, (_, i) => client.postJson(module.endpoint, "/invoke", { i }, limits)),
        { concurrency: "unbounded" }
      )
      expect(replies).toHaveLength(80)
      expect(module.connections()).toBe(32)
    }))

  it.scopedLive("keeps at most 16 idle sockets per endpoint and reuses them", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(50)
      const client = yield* makeModuleClient()
      const burst = (count: number) =>
        Effect.all(Array.from({ length: count }, (_, i) => client.postJson(module.endpoint, "/invoke", { i }, limits)), { concurrency: "unbounded" })
      yield* burst(32)
      expect(module.connections()).toBe(32)
      expect(yield* module.waitClosed(16, 1_000)).toBe(true)
      yield* Effect.sleep("100 millis")
      expect(module.closed()).toBe(16) // the other 16 stay open, idle
      yield* burst(16)
      expect(module.connections()).toBe(32) // served on the idle ones, no new connection
    }))

  it.scopedLive("closes an idle socket a second before the module's announced Keep-Alive timeout", () =>
    Effect.gen(function*() {
      let hostClosedFirst = false
      const module = yield* startFakeModule((request, response) => {
        // The module keeps its word: it closes the connection itself after the 2 s it announces.
        request.socket.once("end", () => {
          hostClosedFirst = true
        })
        setTimeout(() => request.socket.destroy(), 2_000).unref()
        response.setHeader("keep-alive", "timeout=2")
        answerJson(response, { ok: true })
      })
      const client = yield* makeModuleClient()
      yield* client.get(module.endpoint, "/healthz", limits)
      const idleSince = Date.now()
      expect(yield* module.waitClosed(1, 5_000)).toBe(true)
      expect(hostClosedFirst).toBe(true)
      expect(Date.now() - idleSince).toBeGreaterThanOrEqual(800) // kept for a while, not dropped at once
    }))

  it.scopedLive("destroys its idle keep-alive sockets when the layer's scope closes", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(0)
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(ModuleClientLive, scope)
      const client = Context.get(context, ModuleClient)
      yield* client.get(module.endpoint, "/readyz", limits)
      expect(module.closed()).toBe(0)
      yield* Scope.close(scope, Exit.void)
      expect(yield* module.waitClosed(1)).toBe(true)
    }))

  it.scopedLive("fails with Timeout on a slow reply and destroys the socket (the module sees it close)", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(5_000)
      const client = yield* makeModuleClient()
      const started = Date.now()
      const error = yield* Effect.flip(client.postJson(module.endpoint, "/invoke", {}, { ...limits, timeoutMs: 150 }))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("150 ms")
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(yield* module.waitClosed(1, 1_000)).toBe(true)
    }))

  it.scopedLive("destroys the socket when the calling fiber is interrupted", () =>
    Effect.gen(function*() {
      const module = yield* delayedJson(5_000)
      const client = yield* makeModuleClient()
      const fiber = yield* Effect.fork(client.postJson(module.endpoint, "/invoke", {}, limits))
      yield* Effect.sleep("50 millis")
      expect(module.requests).toHaveLength(1)
      yield* Fiber.interrupt(fiber)
      expect(yield* module.waitClosed(1, 1_000)).toBe(true)
    }))

  it.scopedLive("aborts a reply streamed without Content-Length past maxResponseBytes (TooLarge)", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => streamForever(response))
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.postJson(module.endpoint, "/invoke", {}, { timeoutMs: 5_000, maxResponseBytes: 65_536 }))
      expect(error.reason).toBe("TooLarge")
      expect(error.message).toContain("65536")
      expect(yield* module.waitClosed(1, 1_000)).toBe(true)
    }))

  it.scopedLive("refuses a reply whose Content-Length exceeds maxResponseBytes before reading it", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => answerText(response, "x".repeat(100_000)))
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.get(module.endpoint, "/healthz", { timeoutMs: 2_000, maxResponseBytes: 1_000 }))
      expect(error.reason).toBe("TooLarge")
      expect(error.message).toContain("100000 bytes")
    }))

  it.scopedLive("fails postJson with BadJson and a snippet of the body on garbage", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) =>
        answerText(response, "<html><body>Gateway says hi</body></html>", 200, "text/html"))
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.postJson(module.endpoint, "/invoke", {}, limits))
      expect(error.reason).toBe("BadJson")
      expect(error.message).toContain("<html><body>Gateway says hi")
      expect(error.endpoint).toBe(module.endpoint)
      expect(error.path).toBe("/invoke")
    }))

  it.scopedLive("answers get with any status, reading JSON as JSON and anything else as text", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((request, response) =>
        request.url === "/readyz" ? answerText(response, "starting up", 503) : answerJson(response, { ok: true }))
      const client = yield* makeModuleClient()
      expect(yield* client.get(module.endpoint, "/readyz", limits)).toEqual({ status: 503, body: "starting up" })
      expect(yield* client.get(module.endpoint, "/healthz", limits)).toEqual({ status: 200, body: { ok: true } })
    }))

  it.scopedLive("fails postJson on a non-2xx status with the status and a body snippet", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => answerJson(response, { error: "overloaded" }, 503))
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.postJson(module.endpoint, "/invoke", {}, limits))
      expect(error.reason).toBe("Status")
      expect(error.status).toBe(503)
      expect(error.message).toContain(`answered 503: {"error":"overloaded"}`)
    }))

  it.scopedLive("sends the body as JSON and reads an empty answer as null", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => response.writeHead(204).end())
      const client = yield* makeModuleClient()
      const reply = yield* client.postJson(module.endpoint, "/init", { type: "middleware-init", n: 1 }, limits)
      expect(reply).toEqual({ status: 204, body: null })
      expect(module.requests).toEqual([{ method: "POST", path: "/init", body: `{"type":"middleware-init","n":1}` }])
    }))

  it.scopedLive("fails with Unreachable when nothing listens on the port", () =>
    Effect.gen(function*() {
      const port = yield* refusedPort()
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.postJson(`http://127.0.0.1:${port}`, "/invoke", {}, limits))
      expect(error.reason).toBe("Unreachable")
      expect(error.message).toContain("ECONNREFUSED")
    }))

  it.scopedLive("refuses endpoints that are not loopback without any network call", () =>
    Effect.gen(function*() {
      const client = yield* makeModuleClient()
      for (const endpoint of ["http://10.1.2.3:80", "http://example.com:80", "https://127.0.0.1:443", "http://127.0.0.1.example.com:80"]) {
        const error = yield* Effect.flip(client.get(endpoint, "/readyz", limits))
        expect(error.reason).toBe("Unreachable")
        expect(error.message).toContain("not a loopback endpoint")
      }
    }))

  /** A module that resets a kept-alive connection when a second request arrives on it (what a module that died does). */
  const resetsReusedConnections = () => {
    const served = new WeakMap<object, number>()
    return startFakeModule((request, response) => {
      const count = (served.get(request.socket) ?? 0) + 1
      served.set(request.socket, count)
      if (count > 1) request.socket.destroy()
      else answerJson(response, { count })
    })
  }

  it.scopedLive("retries a GET once on a fresh connection when a reused keep-alive socket is reset before any answer", () =>
    Effect.gen(function*() {
      const module = yield* resetsReusedConnections()
      const client = yield* makeModuleClient()
      expect((yield* client.get(module.endpoint, "/healthz", limits)).body).toEqual({ count: 1 })
      expect((yield* client.get(module.endpoint, "/healthz", limits)).body).toEqual({ count: 1 })
      expect(module.requests).toHaveLength(3)
      expect(module.connections()).toBe(2)
    }))

  it.scopedLive("never sends a POST twice: a reset on a reused socket fails it as Unreachable", () =>
    Effect.gen(function*() {
      const module = yield* resetsReusedConnections()
      const client = yield* makeModuleClient()
      expect((yield* client.postJson(module.endpoint, "/invoke", {}, limits)).body).toEqual({ count: 1 })
      const error = yield* Effect.flip(client.postJson(module.endpoint, "/invoke", {}, limits))
      expect(error.reason).toBe("Unreachable")
      expect(module.requests).toHaveLength(2) // the module saw it once: it may have acted on it
      expect((yield* client.postJson(module.endpoint, "/invoke", {}, limits)).body).toEqual({ count: 1 })
      expect(module.connections()).toBe(2)
    }))
})
