import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Fiber, TestClock } from "effect"
import type { Scope } from "effect"
import { BrokerClientLive, makeBrokerClient, makePooledBrokerClient } from "../../../src/layers/broker/BrokerClient.js"
import { encodeFrame, FrameDecoder } from "../../../src/layers/broker/BrokerFraming.js"
import { BrokerClient, BrokerClientError } from "../../../src/services/broker/BrokerClient.js"

/** What the fake broker does with the n-th request (0-based) it reads. */
type Script = (request: Record<string, unknown>, n: number, connection: FakeConnection) => void

interface FakeConnection {
  readonly reply: (value: unknown) => void
  readonly raw: (bytes: Uint8Array) => void
  readonly close: () => void
}

interface FakeBroker {
  readonly socketPath: string
  readonly requests: ReadonlyArray<Record<string, unknown>>
  readonly connections: () => number
  readonly closedByClient: () => number
}

/** A broker on a Unix socket in a fresh temp dir that reads request frames and answers as `script` says. */
const startFakeBroker = (script: Script): Effect.Effect<FakeBroker, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly broker: FakeBroker; readonly server: Net.Server; readonly dir: string }>((resume) => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-broker-client-"))
      const socketPath = Path.join(dir, "broker.sock")
      const requests: Array<Record<string, unknown>> = []
      let connections = 0
      let closedByClient = 0
      const server = Net.createServer((socket) => {
        connections += 1
        const decoder = new FrameDecoder()
        let closedByUs = false
        const connection: FakeConnection = {
          reply: (value) => socket.write(Either.getOrThrow(encodeFrame(value))),
          raw: (bytes) => socket.write(bytes),
          close: () => {
            closedByUs = true
            socket.destroy()
          }
        }
        socket.on("data", (chunk: Buffer) => {
          for (const result of decoder.push(chunk)) {
            const request = Either.getOrThrow(result) as Record<string, unknown>
            requests.push(request)
            script(request, requests.length - 1, connection)
          }
        })
        socket.on("error", () => undefined)
        socket.on("close", () => {
          if (!closedByUs) closedByClient += 1
        })
      })
      server.listen(socketPath, () =>
        resume(Effect.succeed({
          server,
          dir,
          broker: {
            socketPath,
            requests,
            connections: () => connections,
            closedByClient: () => closedByClient
          }
        })))
    }),
    ({ dir, server }) =>
      Effect.async<void>((resume) => {
        server.close(() => {
          Fs.rmSync(dir, { recursive: true, force: true })
          resume(Effect.void)
        })
      })
  ).pipe(Effect.map(({ broker }) => broker))

const helloOk = (request: Record<string, unknown>) => ({
  type: "hello.ok",
  request_id: request["request_id"],
  service: request["service"],
  version: "7.2",
  endpoint: { kind: "unix", path: "/tmp/redis.sock" },
  instance: "redis-7.2-1",
  launched: true
})

const failureOf = <A>(exit: Exit.Exit<A, BrokerClientError>): BrokerClientError => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (!(error instanceof BrokerClientError)) throw new Error(`expected a BrokerClientError, got ${String(exit.cause)}`)
  return error
}

/** Waits on the real clock (the TestClock does not move by itself). */
const liveWait = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

describe("BrokerClientLive", () => {
  it.scopedLive("round-trips a hello, echoing its generated request_id, on one connection", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, _n, connection) => connection.reply(helloOk(request)))
      const client = yield* BrokerClient.pipe(Effect.provide(BrokerClientLive(broker.socketPath)))
      const reply = yield* client.hello("redis", "7.2")
      const request = broker.requests[0]
      expect(request).toEqual({ type: "hello", service: "redis", version: "7.2", request_id: reply.request_id, protocol: 1 })
      expect(reply.request_id).toMatch(/^[0-9a-f-]{36}$/)
      expect(reply).toEqual({
        type: "hello.ok",
        request_id: reply.request_id,
        service: "redis",
        version: "7.2",
        endpoint: { kind: "unix", path: "/tmp/redis.sock" },
        instance: "redis-7.2-1",
        launched: true
      })
      expect(broker.connections()).toBe(1)

      yield* client.hello("redis")
      expect(broker.requests[1]).not.toHaveProperty("version")
      expect(broker.requests[1]?.["request_id"]).not.toBe(request?.["request_id"])
    }))

  it.scopedLive("sends several hellos on one kept connection, and keeps at most idleConnections after a burst", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, _n, connection) => connection.reply(helloOk(request)))
      const client = yield* makePooledBrokerClient(broker.socketPath, { idleConnections: 2 })
      for (let i = 0; i < 5; i++) expect((yield* client.hello("redis")).type).toBe("hello.ok")
      expect(broker.connections()).toBe(1)
      expect(broker.closedByClient()).toBe(0)
      // Eight at once need eight connections; two stay open afterwards, the other six are closed.
      yield* Effect.all(Array.from({ length: 8 }, () => client.hello("redis")), { concurrency: "unbounded" })
      expect(broker.connections()).toBe(8)
      yield* liveWait(50)
      expect(broker.closedByClient()).toBe(6)
      for (let i = 0; i < 4; i++) yield* client.hello("redis")
      expect(broker.connections()).toBe(8)
      expect(broker.requests).toHaveLength(17)
    }))

  it.scopedLive("replaces a kept connection the broker closed in the meantime, without failing the call", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, n, connection) => {
        connection.reply(helloOk(request))
        // The broker closes the first connection right after its reply (as its read deadline would, later).
        if (n === 0) setTimeout(() => connection.close(), 5)
      })
      const client = yield* makePooledBrokerClient(broker.socketPath)
      yield* client.hello("redis")
      yield* liveWait(50)
      expect((yield* client.hello("redis")).type).toBe("hello.ok")
      expect(broker.connections()).toBe(2)
    }))

  it.scopedLive("answers an admin reply of the verb asked", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, _n, connection) =>
        connection.reply({ type: `admin.${String(request["verb"])}`, request_id: request["request_id"], body: { ok: true } })
      )
      const reply = yield* makeBrokerClient(broker.socketPath).admin("healthz")
      expect(reply.type).toBe("admin.healthz")
      expect(reply.body).toEqual({ ok: true })
      expect(broker.requests[0]).toEqual({ type: "admin", verb: "healthz", request_id: reply.request_id })
    }))

  it.scopedLive("retries an overloaded refusal after its retry_after_ms, with the same request_id", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, n, connection) =>
        connection.reply(
          n === 0
            ? { type: "error", request_id: request["request_id"], code: "overloaded", message: "busy", retry_after_ms: 50 }
            : helloOk(request)
        )
      )
      const started = Date.now()
      const reply = yield* makeBrokerClient(broker.socketPath).hello("redis")
      expect(reply.type).toBe("hello.ok")
      expect(Date.now() - started).toBeGreaterThanOrEqual(45)
      expect(broker.requests).toHaveLength(2)
      expect(broker.connections()).toBe(2)
      expect(broker.requests[1]?.["request_id"]).toBe(broker.requests[0]?.["request_id"])
    }))

  it.scoped("waits retry_after_ms on the Effect Clock before retrying", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, n, connection) =>
        connection.reply(
          n === 0 ? { type: "error", code: "rate_limited", message: "slow down", retry_after_ms: 60_000 } : helloOk(request)
        )
      )
      const fiber = yield* Effect.fork(makeBrokerClient(broker.socketPath).hello("redis"))
      while (!Chunk.some(yield* TestClock.sleeps(), (deadline) => deadline === 60_000)) yield* liveWait(5)
      yield* liveWait(30)
      expect(broker.requests).toHaveLength(1)
      yield* TestClock.adjust("60 seconds")
      const reply = yield* Fiber.join(fiber)
      expect(reply.type).toBe("hello.ok")
      expect(broker.requests).toHaveLength(2)
    }))

  it.scopedLive("gives up after maxRetries retries with Refused carrying the last code and delay", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, _n, connection) =>
        connection.reply({ type: "error", request_id: request["request_id"], code: "overloaded", message: "busy", retry_after_ms: 5 })
      )
      const error = failureOf(yield* Effect.exit(makeBrokerClient(broker.socketPath, { maxRetries: 2 }).hello("redis")))
      expect(error.reason).toBe("Refused")
      expect(error.code).toBe("overloaded")
      expect(error.retryAfterMs).toBe(5)
      expect(error.message).toContain("after 2 retries")
      expect(broker.requests).toHaveLength(3)
    }))

  it.scopedLive("fails Refused with unknown_service at once, without retrying", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker((request, _n, connection) =>
        connection.reply({ type: "error", request_id: request["request_id"], code: "unknown_service", message: "no service \"nope\"" })
      )
      const error = failureOf(yield* Effect.exit(makeBrokerClient(broker.socketPath).hello("nope")))
      expect(error.reason).toBe("Refused")
      expect(error.code).toBe("unknown_service")
      expect(error.message).toContain(`unknown_service: no service "nope"`)
      expect(broker.requests).toHaveLength(1)
    }))

  it.scopedLive("fails Timeout when the broker never answers, and closes its connection", () =>
    Effect.gen(function*() {
      const broker = yield* startFakeBroker(() => undefined)
      const error = failureOf(yield* Effect.exit(makeBrokerClient(broker.socketPath, { timeoutMs: 100 }).hello("redis")))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("no reply within 100 ms")
      yield* liveWait(50)
      expect(broker.closedByClient()).toBe(1)
    }))

  it.scopedLive("fails Connection when the broker closes without a reply or mid-frame", () =>
    Effect.gen(function*() {
      const closing = yield* startFakeBroker((_request, _n, connection) => connection.close())
      const closed = failureOf(yield* Effect.exit(makeBrokerClient(closing.socketPath).hello("redis")))
      expect(closed.reason).toBe("Connection")
      expect(closed.message).toContain("without a reply")

      const halfway = yield* startFakeBroker((_request, _n, connection) => {
        connection.raw(Uint8Array.of(0, 0, 0, 50, 0x7b))
        setTimeout(() => connection.close(), 10)
      })
      const cut = failureOf(yield* Effect.exit(makeBrokerClient(halfway.socketPath).hello("redis")))
      expect(cut.reason).toBe("Connection")
      expect(cut.message).toContain("5 bytes into a reply frame")
    }))

  it.scopedLive("fails Connection when nothing listens on the socket path", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-broker-client-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const error = failureOf(yield* Effect.exit(makeBrokerClient(Path.join(dir, "broker.sock")).admin("status")))
      expect(error.reason).toBe("Connection")
      expect(error.message).toContain("ENOENT")
    }))

  it.scopedLive("fails Protocol on an oversize reply frame, a foreign request_id or the wrong reply kind", () =>
    Effect.gen(function*() {
      const oversize = yield* startFakeBroker((_request, _n, connection) => connection.raw(Uint8Array.of(0, 1, 0, 1)))
      const tooBig = failureOf(yield* Effect.exit(makeBrokerClient(oversize.socketPath).hello("redis")))
      expect(tooBig.reason).toBe("Protocol")
      expect(tooBig.message).toContain("exceeds the maximum")

      const foreign = yield* startFakeBroker((request, _n, connection) => connection.reply({ ...helloOk(request), request_id: "other" }))
      expect(failureOf(yield* Effect.exit(makeBrokerClient(foreign.socketPath).hello("redis"))).reason).toBe("Protocol")

      const wrongKind = yield* startFakeBroker((request, _n, connection) => connection.reply({ ...helloOk(request), service: "redis" }))
      const mismatch = failureOf(yield* Effect.exit(makeBrokerClient(wrongKind.socketPath).admin("status")))
      expect(mismatch.reason).toBe("Protocol")
      expect(mismatch.message).toContain("expected an admin.status reply")
    }))
})
