import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema, Scope } from "effect"
import * as fs from "node:fs"
import { makeResourcePressureMonitor, ResourcePressure } from "../../../src/layers/system/ResourcePressure.js"

const onLinux = process.platform === "linux"

// Holds the event loop for `ms`, which a live delay monitor records as a delay of about that long. The
// sleep before it lets the monitor's 10 ms timer tick once after the last read's reset: perf_hooks
// forgets its previous tick on reset, so a stall starting right at a read is not measured.
const stallEventLoop = (ms: number) =>
  Effect.sleep("30 millis").pipe(
    Effect.zipRight(Effect.sync(() => {
      const until = Date.now() + ms
      while (Date.now() < until) {
        // busy wait on purpose
      }
    })),
    Effect.zipRight(Effect.sleep("30 millis"))
  )

describe("ResourcePressure", () => {
  it.scopedLive("reads sane process, memory and event-loop figures", () =>
    Effect.gen(function*() {
      const monitor = yield* makeResourcePressureMonitor
      yield* Effect.sleep("50 millis")
      const pressure = yield* monitor.read
      expect(pressure.os_parallelism).toBeGreaterThanOrEqual(1)
      expect(pressure.memory.rss_bytes).toBeGreaterThan(0)
      expect(pressure.memory.heap_used_bytes).toBeGreaterThan(0)
      expect(pressure.memory.heap_total_bytes).toBeGreaterThanOrEqual(pressure.memory.heap_used_bytes)
      expect(pressure.uptime_sec).toBeGreaterThan(0)
      expect(pressure.event_loop.utilization).toBeGreaterThanOrEqual(0)
      expect(pressure.event_loop.utilization).toBeLessThanOrEqual(1)
      expect(pressure.event_loop.delay_p50_ms).toBeLessThanOrEqual(pressure.event_loop.delay_p99_ms)
      expect(pressure.event_loop.delay_p99_ms).toBeLessThanOrEqual(pressure.event_loop.delay_max_ms)
    }))

  it.scopedLive.skipIf(!onLinux)("reads threads, open fds and the fd soft limit from /proc on Linux", () =>
    Effect.gen(function*() {
      const monitor = yield* makeResourcePressureMonitor
      const before = yield* monitor.read
      expect(before.process_threads).toBeGreaterThanOrEqual(1)
      expect(before.fd_soft_limit).toBeGreaterThan(0)
      expect(before.open_fds).toBeGreaterThanOrEqual(3)
      yield* Effect.acquireRelease(
        Effect.sync(() => Array.from({ length: 10 }, () => fs.openSync("/dev/null", "r"))),
        (fds) => Effect.sync(() => fds.forEach((fd) => fs.closeSync(fd)))
      )
      const after = yield* monitor.read
      expect(after.open_fds).toBeGreaterThanOrEqual((before.open_fds ?? Number.POSITIVE_INFINITY) + 10)
    }))

  it.scopedLive("reports event-loop delay and utilization since the previous read", () =>
    Effect.gen(function*() {
      const monitor = yield* makeResourcePressureMonitor
      yield* monitor.read
      yield* stallEventLoop(120)
      const busy = yield* monitor.read
      expect(busy.event_loop.delay_max_ms).toBeGreaterThanOrEqual(50)
      expect(busy.event_loop.utilization).toBeGreaterThan(0.3)
      expect(busy.event_loop.utilization).toBeLessThanOrEqual(1)
    }))

  it.scopedLive("encodes to JSON that decodes back to the same reading", () =>
    Effect.gen(function*() {
      const monitor = yield* makeResourcePressureMonitor
      const pressure = yield* monitor.read
      const json = JSON.stringify(yield* Schema.encode(ResourcePressure)(pressure))
      expect(yield* Schema.decodeUnknown(ResourcePressure)(JSON.parse(json))).toEqual(pressure)
      expect(Object.keys(JSON.parse(json))).toEqual([
        "os_parallelism",
        "process_threads",
        "open_fds",
        "fd_soft_limit",
        "event_loop",
        "memory",
        "uptime_sec"
      ])
    }))

  it.live("stops measuring event-loop delay once its scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const monitor = yield* Scope.extend(makeResourcePressureMonitor, scope)
      yield* Scope.close(scope, Exit.void)
      yield* monitor.read
      yield* stallEventLoop(120)
      const afterClose = yield* monitor.read
      expect(afterClose.event_loop.delay_max_ms).toBe(0)
    }))
})
