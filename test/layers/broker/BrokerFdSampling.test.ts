/**
 * The broker reads its descriptor usage (`/proc/self/fd`, O(open fds)) on a timer, not once per
 * accepted connection, while it is far from its limit. (Near the limit and while demoted it still
 * reads per accept: the fd-pressure test in Broker.test.ts covers that.)
 */
import { createRequire, syncBuiltinESMExports } from "node:module"
import type * as Fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { makeBroker } from "../../../src/layers/broker/Broker.js"
import { makeBrokerClient } from "../../../src/layers/broker/BrokerClient.js"
import { ProcessLauncherLive } from "../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { makeBrokerDataDir } from "../../support/brokerFixture.js"

/**
 * Counts `fs.readdirSync("/proc/self/fd")` while the scope lives: the CommonJS `fs` is wrapped and
 * `syncBuiltinESMExports` makes ESM importers of `node:fs` see the wrapper.
 */
const countFdReads: Effect.Effect<() => number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const fs: { readdirSync: typeof Fs.readdirSync } = createRequire(import.meta.url)("node:fs")
    const original = fs.readdirSync
    let calls = 0
    const counting: typeof Fs.readdirSync = Object.assign(
      (...args: Parameters<typeof Fs.readdirSync>) => {
        if (args[0] === "/proc/self/fd") calls += 1
        return original(...args)
      },
      original
    )
    fs.readdirSync = counting
    syncBuiltinESMExports()
    return { fs, original, calls: () => calls }
  }),
  ({ fs, original }) =>
    Effect.sync(() => {
      fs.readdirSync = original
      syncBuiltinESMExports()
    })
).pipe(Effect.map(({ calls }) => calls))

describe("Broker descriptor sampling", () => {
  it.scopedLive("reads /proc/self/fd far less than once per accepted connection", () =>
    Effect.gen(function*() {
      const data = yield* makeBrokerDataDir
      const reads = yield* countFdReads
      const broker = yield* makeBroker({ dataDir: data.dir }).pipe(Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive)))
      const client = makeBrokerClient(broker.socketPath, { maxRetries: 0 })
      const before = reads()
      const connections = 100
      // This client keeps no connection between calls: each healthz is a connection of its own.
      yield* Effect.all(Array.from({ length: connections }, () => client.admin("healthz")), { concurrency: 10 })
      expect((yield* client.admin("status")).body).toMatchObject({ demoted: false })
      // The sampler reads every 250 ms: a handful of reads while the 100 connections come and go.
      expect(reads() - before).toBeLessThan(connections / 4)
    }))
})
