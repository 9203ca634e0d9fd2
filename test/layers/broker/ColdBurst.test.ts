/**
 * A cold burst for a large executable: 200 concurrent first hellos for a service whose executable is
 * Node itself (~95 MB) share one sha256 of it, so one backend launches and every hello is answered.
 * Each hello hashing the file itself (200 × 95 MB) timed them all out, with nothing launched.
 */
import * as Fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { makeBroker } from "../../../src/layers/broker/Broker.js"
import { makeBrokerClient } from "../../../src/layers/broker/BrokerClient.js"
import { ProcessLauncherLive } from "../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { AdminSnapshot } from "../../../src/services/broker/Broker.js"
import { makeBrokerDataDir, pidsRunning } from "../../support/brokerFixture.js"

/** Bytes this process has read (`rchar` of /proc/self/io): files, sockets and pipes alike. */
const bytesRead = (): number => Number(/^rchar: (\d+)$/m.exec(Fs.readFileSync("/proc/self/io", "utf8"))?.[1] ?? Number.NaN)

/** A backend in Node: echoes on the socket the broker gives it. Its marker argument finds its process. */
const echoInNode = (marker: string) => [
  "-e",
  "require('node:net').createServer((s) => s.pipe(s)).listen(process.env.CORRAL_BACKEND_ENDPOINT)",
  marker
]

describe("Broker cold burst", () => {
  it.scopedLive("answers 200 concurrent first hellos for a 95 MB executable with one launch, reading it once", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      const executable = process.execPath
      const size = Fs.statSync(executable).size
      const marker = `cold-burst-${process.pid}-${Date.now()}`
      data.define("big", { launch: { executable, args: echoInNode(marker) } })
      const broker = yield* makeBroker({ dataDir: data.dir, maxConnections: 256 }).pipe(
        Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive))
      )
      // Each hello waits at most 20 s: enough for one hash and one start on a loaded machine, far
      // from enough for 200 hashes of the file.
      const client = makeBrokerClient(broker.socketPath, { maxRetries: 0, timeoutMs: 20_000 })
      const before = bytesRead()
      const replies = yield* Effect.all(Array.from({ length: 200 }, () => Effect.either(client.hello("big"))), {
        concurrency: "unbounded"
      })
      const read = bytesRead() - before
      const failures = replies.flatMap((reply) => (reply._tag === "Left" ? [reply.left.message] : []))
      expect(failures).toEqual([])
      const answers = replies.flatMap((reply) => (reply._tag === "Right" ? [reply.right] : []))
      expect(answers).toHaveLength(200)
      expect(new Set(answers.map((answer) => answer.instance)).size).toBe(1)
      expect(answers.filter((answer) => answer.launched)).toHaveLength(1)
      // The executable was read once (plus the frames and whatever else this process read), not 200 times.
      expect(read).toBeGreaterThanOrEqual(size)
      expect(read).toBeLessThan(2 * size)
      const status = yield* Effect.orDie(Effect.flatMap(client.admin("status"), (reply) => Schema.decodeUnknown(AdminSnapshot)(reply.body)))
      expect(status.counters).toMatchObject({ hellos: 200, launches: 1, launch_failures: 0 })
      expect(pidsRunning(marker)).toEqual([status.backends[0]?.pid])
    }), 60_000)
})
