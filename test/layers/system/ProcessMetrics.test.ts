import * as Fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseFdSoftLimit } from "../../../src/layers/system/FdUsage.js"
import { makeProcessMetrics } from "../../../src/layers/system/ProcessMetrics.js"
import { renderPrometheus } from "../../../src/layers/system/PrometheusText.js"
import { familyTypes, parseSamples } from "../../support/prometheusText.js"

/** Blocks the event loop for `ms` (a deliberate stall the delay monitor must see). */
const stall = (ms: number) =>
  Effect.sync(() => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      // Busy on purpose: nothing else may run.
    }
  })

describe("makeProcessMetrics", () => {
  it.scopedLive("reports this process's CPU, memory, descriptors and start time under the standard names", () =>
    Effect.gen(function*() {
      const metrics = yield* makeProcessMetrics
      const text = renderPrometheus(yield* metrics.read)
      const samples = parseSamples(text)
      expect(familyTypes(text)).toEqual(new Map([
        ["nodejs_eventloop_delay_seconds", "gauge"],
        ["process_cpu_seconds_total", "counter"],
        ["process_max_fds", "gauge"],
        ["process_open_fds", "gauge"],
        ["process_resident_memory_bytes", "gauge"],
        ["process_start_time_seconds", "gauge"]
      ]))
      const cpu = process.cpuUsage()
      expect(samples.get("process_cpu_seconds_total")).toBeGreaterThan(0)
      expect(samples.get("process_cpu_seconds_total")).toBeLessThanOrEqual((cpu.user + cpu.system) / 1e6)
      expect(samples.get("process_resident_memory_bytes")).toBeGreaterThan(10_000_000)
      const openNow = Fs.readdirSync("/proc/self/fd").length
      expect(Math.abs((samples.get("process_open_fds") ?? 0) - openNow)).toBeLessThanOrEqual(2)
      expect(samples.get("process_max_fds")).toBe(parseFdSoftLimit(Fs.readFileSync("/proc/self/limits", "utf8")))
      const started = Date.now() / 1000 - process.uptime()
      expect(Math.abs((samples.get("process_start_time_seconds") ?? 0) - started)).toBeLessThan(2)
    }))

  it.scopedLive("shows an event-loop stall in the delay quantiles of the next scrape, and forgets it after", () =>
    Effect.gen(function*() {
      const metrics = yield* makeProcessMetrics
      yield* metrics.read
      yield* Effect.sleep("50 millis")
      yield* stall(300)
      yield* Effect.sleep("50 millis")
      const stalled = parseSamples(renderPrometheus(yield* metrics.read))
      expect(stalled.get(`nodejs_eventloop_delay_seconds{quantile="1"}`)).toBeGreaterThanOrEqual(0.25)
      expect(stalled.get(`nodejs_eventloop_delay_seconds{quantile="0.5"}`)).toBeLessThan(0.25)
      yield* Effect.sleep("100 millis")
      const calm = parseSamples(renderPrometheus(yield* metrics.read))
      expect(calm.get(`nodejs_eventloop_delay_seconds{quantile="1"}`)).toBeLessThan(0.25)
    }))
})
