import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger, Option, Ref } from "effect"
import { serveConnections, serveHandler } from "../../../src/layers/server/BoundedServer.js"
import type { BoundedConnection } from "../../../src/services/server/BoundedConnection.js"
import { BoundedResponse } from "../../../src/services/server/BoundedHttp.js"
import { connect, readUntilClose, request, waitUntil } from "../../support/rawHttp.js"

let serverCount = 0
const uniqueName = (label: string) => `test-raw-${label}-${process.pid}-${serverCount++}`
const quiet = Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {})))

/** Echoes every chunk back, upper-cased, until the peer finishes. */
const echo = (connection: BoundedConnection) =>
  Effect.gen(function*() {
    while (true) {
      const chunk = yield* connection.read
      if (Option.isNone(chunk)) return
      yield* connection.write(Buffer.from(chunk.value).toString("utf8").toUpperCase())
    }
  })

const socketPath = () => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-raw-")), "raw.sock")

describe("BoundedServer raw connection handler", () => {
  it.scopedLive("serves a protocol over a Unix socket, one run per connection", () =>
    Effect.gen(function*() {
      const path = socketPath()
      yield* serveConnections({ name: uniqueName("unix"), path }, echo)
      const socket = yield* Effect.promise(() => connect(path))
      const reply = new Promise<string>((resolve) => socket.once("data", (chunk) => resolve(String(chunk))))
      socket.write("ping")
      expect(yield* Effect.promise(() => reply)).toBe("PING")
      socket.end()
      const { closed } = yield* Effect.promise(() => readUntilClose(socket))
      expect(closed).toBe(true)
    }))

  it.scopedLive("over maxConnections writes the protocol's refusal and closes, without a run", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const path = socketPath()
      const server = yield* serveConnections(
        { name: uniqueName("cap"), path, maxConnections: 1 },
        (connection) => Effect.zipRight(Ref.update(runs, (n) => n + 1), echo(connection)),
        { overCapacityReply: Buffer.from("BUSY\n") }
      )
      const first = yield* Effect.promise(() => connect(path))
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).active_connections === 1))
      const second = yield* Effect.promise(() => connect(path))
      const { data, closed } = yield* Effect.promise(() => readUntilClose(second))
      expect(data).toBe("BUSY\n")
      expect(closed).toBe(true)
      expect(yield* Ref.get(runs)).toBe(1)
      expect((yield* server.metrics).rejected_connections_total).toBe(1)
      first.destroy()
    }))

  it.scopedLive("interrupts a run past its deadline, runs its finalizers, writes the timeout reply and closes", () =>
    Effect.gen(function*() {
      const finalized = yield* Deferred.make<void>()
      const path = socketPath()
      const server = yield* serveConnections(
        { name: uniqueName("deadline"), path, handlerTimeoutMs: 150 },
        (connection) => Effect.zipRight(connection.read, Effect.never).pipe(Effect.ensuring(Deferred.succeed(finalized, undefined))),
        { timeoutReply: Buffer.from("TIMEOUT\n") }
      )
      const socket = yield* Effect.promise(() => connect(path))
      const { data, closed, elapsedMs } = yield* Effect.promise(() => readUntilClose(socket))
      expect(data).toBe("TIMEOUT\n")
      expect(closed).toBe(true)
      expect(elapsedMs).toBeGreaterThanOrEqual(140)
      expect(yield* Deferred.isDone(finalized)).toBe(true)
      expect((yield* server.metrics).handler_timeouts_total).toBe(1)
    }).pipe(quiet))

  it.scopedLive("a defect closes its connection, is counted, and the listener keeps serving", () =>
    Effect.gen(function*() {
      const path = socketPath()
      const server = yield* serveConnections({ name: uniqueName("defect"), path }, (connection) =>
        Effect.flatMap(connection.read, (chunk) => {
          const text = Option.isSome(chunk) ? Buffer.from(chunk.value).toString("utf8") : ""
          return text === "crash" ? Effect.die(new Error("protocol bug")) : Effect.zipRight(connection.write(text.toUpperCase()), echo(connection))
        }))
      for (let i = 0; i < 200; i++) {
        const socket = yield* Effect.promise(() => connect(path))
        socket.write("crash")
        expect((yield* Effect.promise(() => readUntilClose(socket))).closed).toBe(true)
      }
      const socket = yield* Effect.promise(() => connect(path))
      const reply = new Promise<string>((resolve) => socket.once("data", (chunk) => resolve(String(chunk))))
      socket.write("still alive")
      expect(yield* Effect.promise(() => reply)).toBe("STILL ALIVE")
      socket.destroy()
      expect((yield* server.metrics).handler_errors_total).toBe(200)
    }).pipe(quiet))

  it.scopedLive("destroy closes the connection at once, while the handler still runs, and the run then ends", () =>
    Effect.gen(function*() {
      const path = socketPath()
      const server = yield* serveConnections({ name: uniqueName("destroy"), path }, (connection) =>
        Effect.gen(function*() {
          yield* connection.read
          yield* connection.destroy
          return yield* Effect.never
        }))
      const socket = yield* Effect.promise(() => connect(path))
      socket.write("bye")
      const { data, closed } = yield* Effect.promise(() => readUntilClose(socket, 2_000))
      expect(closed).toBe(true)
      expect(data).toBe("")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 0))
    }))

  it.live("drain: stops accepting, lets runs finish within the grace, interrupts the rest and removes the socket file", () =>
    Effect.gen(function*() {
      const path = socketPath()
      const finalized = yield* Deferred.make<void>()
      const { stuck } = yield* Effect.scoped(
        Effect.gen(function*() {
          const server = yield* serveConnections({ name: uniqueName("drain"), path, shutdownGraceMs: 100 }, (connection) =>
            Effect.zipRight(connection.read, Effect.never).pipe(Effect.ensuring(Deferred.succeed(finalized, undefined))))
          const socket = yield* Effect.promise(() => connect(path))
          yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(server.metrics)).in_flight === 1))
          return { stuck: readUntilClose(socket, 3_000) }
        })
      )
      expect(Fs.existsSync(path)).toBe(false)
      expect(yield* Deferred.isDone(finalized)).toBe(true)
      expect((yield* Effect.promise(() => stuck)).closed).toBe(true)
    }))
})

describe("BoundedServer drain when the owning fiber is interrupted (SIGTERM)", () => {
  it.live("still gives in-flight requests their grace and records the drain", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<{ port: number; metrics: Effect.Effect<{ in_flight: number; shutdown_drain_ms: number | null }> }>()
      const fiber = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function*() {
            const server = yield* serveHandler({ name: uniqueName("sigterm"), shutdownGraceMs: 2_000 }, () =>
              Effect.as(Effect.sleep("300 millis"), BoundedResponse.json({ finished: true })))
            const port = server.address._tag === "Tcp" ? server.address.port : 0
            yield* Deferred.succeed(started, { port, metrics: server.metrics })
            return yield* Effect.never
          })
        )
      )
      const { port, metrics } = yield* Deferred.await(started)
      const pending = request(port, "/slow")
      yield* Effect.promise(() => waitUntil(async () => (await Effect.runPromise(metrics)).in_flight === 1))
      yield* Fiber.interrupt(fiber)
      const response = yield* Effect.promise(() => pending)
      expect(response.status).toBe(200)
      expect(JSON.parse(response.body)).toEqual({ finished: true })
      expect((yield* metrics).shutdown_drain_ms).toBeGreaterThanOrEqual(200)
    }))
})
