/**
 * Idle connections cannot lock the broker: with every connection slot held, a new client's hello is
 * answered by closing the connection idle longest (between frames, or never sent one), and a
 * connection in the middle of a frame or waiting for a launch is never the one closed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { makeBroker } from "../../../src/layers/broker/Broker.js"
import { ProcessLauncherLive } from "../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { type BrokerDataDir, makeBrokerDataDir } from "../../support/brokerFixture.js"
import { connectRaw, eventually, exchange, frameOf, type RawPeer } from "../../support/brokerWire.js"

/** Longer than any test here: a connection closed during one was not closed by the read deadline. */
const readDeadlineMs = 30_000

const startBroker = (data: BrokerDataDir, maxConnections: number) =>
  makeBroker({ dataDir: data.dir, readDeadlineMs, maxConnections }).pipe(
    Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive))
  )

/** A peer the broker has admitted and answered once: idle between frames from then on. */
const answeredPeer = (socketPath: string) =>
  Effect.tap(connectRaw(socketPath), (peer) =>
    Effect.map(exchange(peer, { type: "admin", verb: "healthz" }), (reply) => expect(reply).toMatchObject({ type: "admin.healthz" })))

/** A hello for a service nobody defined: answered `unknown_service` by a broker that admitted the peer. */
const unknownHello = { type: "hello", service: "nobody-defined-this", protocol: 1 }

const expectOpen = (what: string, peer: RawPeer) =>
  Effect.map(peer.isClosed, (closed) => expect(closed, `${what} was closed`).toBe(false))

describe("Broker connection slots held by idle connections", () => {
  it.scopedLive("answers a new client's hello by closing the connection idle longest", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      const broker = yield* startBroker(data, 3)
      const kept = yield* answeredPeer(broker.socketPath)
      // Never sends a byte: idle since it was admitted, after `kept` was.
      const silent = yield* connectRaw(broker.socketPath)
      // Idle is counted from a connection's last reply, not its connect: `kept` is now idle for less than `silent`.
      expect(yield* exchange(kept, { type: "admin", verb: "healthz" })).toMatchObject({ type: "admin.healthz" })
      const keptToo = yield* answeredPeer(broker.socketPath)

      const newcomer = yield* connectRaw(broker.socketPath)
      expect(yield* exchange(newcomer, unknownHello)).toMatchObject({ type: "error", code: "unknown_service" })
      yield* silent.closedAt(2_000)
      yield* expectOpen("the connection answered after the silent one connected", kept)

      // Next in line is `kept`: its last reply came before the others'.
      const another = yield* connectRaw(broker.socketPath)
      expect(yield* exchange(another, unknownHello)).toMatchObject({ type: "error", code: "unknown_service" })
      yield* kept.closedAt(2_000)
      yield* expectOpen("the connection answered later", keptToo)
      expect(yield* exchange(keptToo, { type: "admin", verb: "healthz" })).toMatchObject({ type: "admin.healthz" })
    }))

  it.scopedLive("never closes a connection mid-frame or waiting for a launch, and refuses when all are busy", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      // Ready after 2 s: its first hello waits on the launch that long.
      data.define("slow", { launch: { args: ["--delay-ready", "2"] }, ready_timeout_ms: 20_000 })
      const broker = yield* startBroker(data, 3)

      const launching = yield* connectRaw(broker.socketPath)
      yield* launching.send(frameOf({ type: "hello", service: "slow", protocol: 1 }))
      const midFrame = yield* connectRaw(broker.socketPath)
      const healthz = frameOf({ type: "admin", verb: "healthz" })
      yield* midFrame.send(healthz.subarray(0, 6))
      const idle = yield* answeredPeer(broker.socketPath)
      // The launch is under way (its backend process exists): that connection is waiting on it, not idle.
      yield* eventually("the slow backend started", Effect.sync(() => data.backendPids().length === 1))

      const newcomer = yield* connectRaw(broker.socketPath)
      expect(yield* exchange(newcomer, unknownHello)).toMatchObject({ type: "error", code: "unknown_service" })
      yield* idle.closedAt(2_000)
      yield* expectOpen("the connection waiting for a launch", launching)
      yield* expectOpen("the connection mid-frame", midFrame)

      // The newcomer waits on the launch too (the broker counted its hello): now every slot is busy.
      yield* newcomer.send(frameOf({ type: "hello", service: "slow", protocol: 1 }))
      yield* eventually("the broker read the newcomer's second hello", Effect.map(broker.snapshot, (status) => status.counters.hellos === 3))
      const refused = yield* connectRaw(broker.socketPath)
      expect(yield* refused.reply()).toMatchObject({ type: "error", code: "overloaded" })

      expect(yield* launching.reply(10_000)).toMatchObject({ type: "hello.ok", service: "slow", launched: true })
      expect(yield* newcomer.reply(10_000)).toMatchObject({ type: "hello.ok", service: "slow", launched: false })
      yield* midFrame.send(healthz.subarray(6))
      expect(yield* midFrame.reply()).toMatchObject({ type: "admin.healthz" })
    }), 20_000)
})
