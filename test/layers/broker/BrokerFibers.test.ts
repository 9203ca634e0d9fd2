import { performance } from "node:perf_hooks"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope, Supervisor } from "effect"
import { makeBroker } from "../../../src/layers/broker/Broker.js"
import { ProcessLauncherLive } from "../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { makeBrokerDataDir } from "../../support/brokerFixture.js"
import { connectRaw, exchange } from "../../support/brokerWire.js"

/** Counts every fiber started under it (the connection fibers of a broker started under `Effect.supervised`). */
class FiberCounter extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart() {
    this.started++
  }
}

const brokerLayer = Layer.merge(ProcessLauncherLive, LoopbackPortsLive)

describe("Broker fibers", () => {
  it.scopedLive("serves 300 frames on one connection without forking a fiber per frame (deadline and drain are watched from outside the read)", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      const counter = new FiberCounter()
      const broker = yield* makeBroker({ dataDir: data.dir }).pipe(Effect.provide(brokerLayer), Effect.supervised(counter))
      const peer = yield* connectRaw(broker.socketPath)
      expect(yield* exchange(peer, { type: "admin", verb: "healthz", request_id: "first" })).toMatchObject({ type: "admin.healthz" })
      const before = counter.started
      for (let i = 0; i < 300; i++) {
        expect(yield* exchange(peer, { type: "admin", verb: "healthz", request_id: `f${i}` })).toEqual({
          type: "admin.healthz",
          request_id: `f${i}`,
          body: { status: "ok" }
        })
      }
      // The sweeper and the descriptor sampler fork nothing per tick; a timeout and a race per read forked 4 per frame.
      expect(counter.started - before).toBeLessThan(10)
    }))

  it.scopedLive("answers 150 concurrent first hellos with one launch, without a fiber per waiting hello", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      data.define("burst", { launch: { args: ["--delay-ready", "0.3"] } })
      const counter = new FiberCounter()
      const broker = yield* makeBroker({ dataDir: data.dir }).pipe(Effect.provide(brokerLayer), Effect.supervised(counter))
      const peers = yield* Effect.all(Array.from({ length: 150 }, () => connectRaw(broker.socketPath)), { concurrency: 16 })
      // An answered frame on each: every connection fiber has started before the count.
      yield* Effect.forEach(peers, (peer) => exchange(peer, { type: "admin", verb: "healthz" }), { concurrency: 16, discard: true })
      const before = counter.started
      const replies = yield* Effect.all(
        peers.map((peer, i) => exchange(peer, { type: "hello", service: "burst", request_id: `h${i}`, protocol: 1 }, 10_000)),
        { concurrency: "unbounded" }
      )
      expect(replies.every((reply) => reply["type"] === "hello.ok")).toBe(true)
      expect(replies.filter((reply) => reply["launched"] === true)).toHaveLength(1)
      // The launch's own fibers (process, readiness, output, its guard): about 20; a timeout per waiting
      // hello forked two fibers each (300 here).
      expect(counter.started - before).toBeLessThan(60)
    }))

  it.scopedLive("ends a connection idle between frames as soon as the broker drains, not at its read deadline", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      const brokerScope = yield* Scope.make()
      yield* Effect.addFinalizer(() => Scope.close(brokerScope, Exit.void))
      const broker = yield* makeBroker({ dataDir: data.dir, readDeadlineMs: 60_000 }).pipe(Effect.provide(brokerLayer), Scope.extend(brokerScope))
      const peer = yield* connectRaw(broker.socketPath)
      expect(yield* exchange(peer, { type: "admin", verb: "healthz" })).toMatchObject({ type: "admin.healthz" })
      const started = performance.now()
      yield* Scope.close(brokerScope, Exit.void)
      const closedAt = yield* peer.closedAt(5_000)
      expect(closedAt - started).toBeLessThan(5_000)
      expect(yield* peer.unread).toBe(0)
    }))
})
