/**
 * The standard `process_*` series (the names Prometheus client libraries use) and the event-loop delay,
 * read when `/metrics` is scraped: CPU seconds, resident memory, open and maximum descriptors, start time,
 * and `nodejs_eventloop_delay_seconds{quantile}` over the time since the previous scrape.
 */
import { performance } from "node:perf_hooks"
import { Effect, MetricKey, MetricPair, MetricState } from "effect"
import type { Scope } from "effect"
import { ProcessMetricNames } from "../../services/system/MetricNames.js"
import { makeEventLoopDelayHistogram } from "./EventLoopDelay.js"
import { readFdCounts } from "./FdUsage.js"

/** Reads the process series. */
export interface ProcessMetrics {
  readonly read: Effect.Effect<ReadonlyArray<MetricPair.MetricPair.Untyped>>
}

/** The event-loop quantiles reported; `1` is the largest delay seen. */
export const eventLoopQuantiles: ReadonlyArray<number> = [0.5, 0.9, 0.99, 1]

const cpuKey = MetricKey.counter(ProcessMetricNames.cpuSecondsTotal, { description: "User and system CPU time spent, in seconds" })
const rssKey = MetricKey.gauge(ProcessMetricNames.residentMemoryBytes, { description: "Resident memory size, in bytes" })
const openFdsKey = MetricKey.gauge(ProcessMetricNames.openFds, { description: "Open file descriptors" })
const maxFdsKey = MetricKey.gauge(ProcessMetricNames.maxFds, { description: "Soft limit of open file descriptors" })
const startKey = MetricKey.gauge(ProcessMetricNames.startTimeSeconds, {
  description: "When the process started, in seconds since the Unix epoch"
})
const delayKey = MetricKey.gauge(ProcessMetricNames.eventLoopDelay, {
  description: "Event-loop delay since the previous scrape, in seconds, by quantile (1: the largest)"
})

const gauge = (key: MetricKey.MetricKey.Gauge<number>, value: number) => MetricPair.unsafeMake(key, MetricState.gauge(value))

const nanosToSeconds = (nanos: number): number => nanos / 1e9

/** Starts event-loop delay sampling (10 ms resolution) for the life of the scope and returns the reader. */
export const makeProcessMetrics: Effect.Effect<ProcessMetrics, never, Scope.Scope> = Effect.gen(function*() {
  const delay = yield* makeEventLoopDelayHistogram
  // timeOrigin is when this process began (ms since the epoch), the same instant every scrape.
  const startTimeSeconds = Math.floor(performance.timeOrigin) / 1000

  // One synchronous step, so concurrent scrapes never interleave between reading and resetting.
  const sampleDelay = Effect.sync(() => {
    const sampled = delay.count > 0
    const values = eventLoopQuantiles.map((quantile) =>
      sampled ? nanosToSeconds(quantile === 1 ? delay.max : delay.percentile(quantile * 100)) : 0)
    delay.reset()
    return values
  })

  const read = Effect.gen(function*() {
    const cpu = process.cpuUsage()
    const fds = yield* readFdCounts
    const delays = yield* sampleDelay
    const pairs: Array<MetricPair.MetricPair.Untyped> = [
      MetricPair.unsafeMake(cpuKey, MetricState.counter((cpu.user + cpu.system) / 1e6)),
      gauge(rssKey, process.memoryUsage.rss()),
      gauge(startKey, startTimeSeconds),
      ...eventLoopQuantiles.map((quantile, i) =>
        gauge(MetricKey.tagged(delayKey, "quantile", String(quantile)), delays[i] ?? 0))
    ]
    // Where /proc cannot be read the descriptor series are left out rather than reported as 0.
    if (typeof fds === "object") {
      pairs.push(gauge(openFdsKey, fds.openFds))
      if (Number.isFinite(fds.softLimit)) pairs.push(gauge(maxFdsKey, fds.softLimit))
    }
    return pairs
  })

  return { read }
})
