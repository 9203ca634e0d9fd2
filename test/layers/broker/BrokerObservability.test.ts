import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { makeBroker } from "../../../src/layers/broker/Broker.js"
import { backendStatePairs } from "../../../src/layers/broker/BrokerMetrics.js"
import { makeBrokerClient } from "../../../src/layers/broker/BrokerClient.js"
import { makeHostEvents } from "../../../src/layers/host/HostEvents.js"
import { ProcessLauncherLive } from "../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { prometheusSnapshotWith, renderPrometheus } from "../../../src/layers/system/PrometheusText.js"
import { HostEvents, type HostEventsShape } from "../../../src/services/host/HostEvents.js"
import { makeBrokerDataDir } from "../../support/brokerFixture.js"
import { eventually } from "../../support/brokerWire.js"
import { isAlive } from "../../support/procfs.js"
import { parseSamples } from "../../support/prometheusText.js"

/** The broker's series now (the registry is global to the test file, so tests compare before and after). */
const brokerSamples = Effect.map(prometheusSnapshotWith({ prefix: "corral_broker_" }), parseSamples)

const brokerEvents = (events: HostEventsShape) =>
  Effect.map(events.recent(1000), (all) => all.flatMap((numbered) => (numbered.event._tag === "broker" ? [numbered.event] : [])))

describe("broker events and metrics", () => {
  it.scopedLive("publishes launched, exited and rejected events and counts hellos, launches and rejects", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      data.define("echo-observed", { version_allow_list: ["1.0.0"] })
      const events = yield* makeHostEvents(100)
      const broker = yield* makeBroker({ dataDir: data.dir }).pipe(
        Effect.provide(Layer.mergeAll(ProcessLauncherLive, LoopbackPortsLive, Layer.succeed(HostEvents, events)))
      )
      const before = yield* brokerSamples
      const client = makeBrokerClient(broker.socketPath, { maxRetries: 0 })

      const hello = yield* client.hello("echo-observed")
      expect(hello.launched).toBe(true)
      yield* Effect.flip(client.hello("nobody-defined-this", "2.0.0"))
      yield* Effect.flip(client.hello("echo-observed", "9.9.9-not-allowed"))

      const after = yield* brokerSamples
      const delta = (series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0)
      expect(delta(`corral_broker_hellos_total{outcome="ok"}`)).toBe(1)
      expect(delta(`corral_broker_hellos_total{outcome="rejected"}`)).toBe(2)
      expect(delta(`corral_broker_launches_total{service="echo-observed"}`)).toBe(1)
      expect(delta(`corral_broker_rejects_total{code="unknown_service"}`)).toBe(1)
      expect(delta(`corral_broker_rejects_total{code="version_blocked"}`)).toBe(1)
      // Every code is a series from the start, so rate() works from the first scrape.
      expect(after.get(`corral_broker_rejects_total{code="overloaded"}`)).toBeTypeOf("number")

      const snapshot = yield* broker.snapshot
      const [backend] = snapshot.backends
      const pid = backend?.pid ?? null
      if (pid === null) return yield* Effect.dieMessage("the snapshot has no backend pid")
      expect(renderPrometheus(backendStatePairs(snapshot.backends))).toBe(
        [
          "# HELP corral_broker_backends Backends known to the broker, by state",
          "# TYPE corral_broker_backends gauge",
          "corral_broker_backends{state=\"live\"} 1",
          "corral_broker_backends{state=\"starting\"} 0",
          "corral_broker_backends{state=\"stopping\"} 0",
          ""
        ].join("\n")
      )

      process.kill(pid, "SIGKILL")
      yield* eventually(`backend ${pid} gone`, Effect.sync(() => !isAlive(pid)))
      yield* eventually("the exited event", Effect.map(brokerEvents(events), (seen) => seen.some((event) => event.action === "exited")))

      const seen = yield* brokerEvents(events)
      expect(seen.map((event) => [event.action, event.service, event.version, event.pid])).toEqual([
        ["launched", "echo-observed", "1.0.0", pid],
        ["rejected", "nobody-defined-this", "2.0.0", null],
        ["rejected", "echo-observed", "9.9.9-not-allowed", null],
        ["exited", "echo-observed", "1.0.0", pid]
      ])
      expect(seen[0]?.detail).toContain(hello.instance)
      expect(seen[1]?.detail).toMatch(/^unknown_service: /)
      expect(seen[2]?.detail).toMatch(/^version_blocked: /)
      expect(seen[3]?.detail).toContain("SIGKILL")
    }))
})
