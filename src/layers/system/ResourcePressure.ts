import { Effect, Schema } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import { performance } from "node:perf_hooks"
import { makeEventLoopDelayHistogram } from "./EventLoopDelay.js"
import { parseFdSoftLimit } from "./FdUsage.js"

/** The `resource_pressure` object of `/v1/runtime-metrics`: process and event-loop load, snake_case JSON. */
export const ResourcePressure = Schema.Struct({
  os_parallelism: Schema.Number,
  process_threads: Schema.NullOr(Schema.Number),
  open_fds: Schema.NullOr(Schema.Number),
  fd_soft_limit: Schema.NullOr(Schema.Number),
  event_loop: Schema.Struct({
    delay_p50_ms: Schema.Number,
    delay_p99_ms: Schema.Number,
    delay_max_ms: Schema.Number,
    utilization: Schema.Number.pipe(Schema.between(0, 1))
  }),
  memory: Schema.Struct({
    rss_bytes: Schema.Number,
    heap_used_bytes: Schema.Number,
    heap_total_bytes: Schema.Number,
    external_bytes: Schema.Number
  }),
  uptime_sec: Schema.Number
})

/** One reading of process and event-loop pressure. */
export type ResourcePressure = typeof ResourcePressure.Type

/** Reads resource pressure; event-loop figures cover the time since the previous read (or the start). */
export interface ResourcePressureMonitor {
  readonly read: Effect.Effect<ResourcePressure>
}

/** Parses the `Threads:` line of /proc/self/status. */
const parseThreads = (status: string): number | null => {
  const match = /^Threads:\s+(\d+)/m.exec(status)
  return match?.[1] === undefined ? null : Number(match[1])
}

// /proc is Linux-only and may be unreadable in a sandbox: every failure is a null figure, never a failed read.
const readProc = <A>(read: () => Promise<A>): Effect.Effect<A | null> =>
  Effect.tryPromise(read).pipe(Effect.orElseSucceed(() => null))

const nanosToMillis = (nanos: number): number => nanos / 1e6

/** Starts event-loop delay and utilization tracking for the life of the scope and returns its reader. */
export const makeResourcePressureMonitor: Effect.Effect<ResourcePressureMonitor, never, Scope.Scope> = Effect.gen(
  function*() {
    const delay = yield* makeEventLoopDelayHistogram
    let previousUtilization = performance.eventLoopUtilization()

    // One synchronous step, so concurrent reads never interleave between reading and resetting.
    const sampleLoop = Effect.sync(() => {
      const current = performance.eventLoopUtilization()
      const { utilization } = performance.eventLoopUtilization(current, previousUtilization)
      previousUtilization = current
      const sampled = delay.count > 0
      const eventLoop = {
        delay_p50_ms: sampled ? nanosToMillis(delay.percentile(50)) : 0,
        delay_p99_ms: sampled ? nanosToMillis(delay.percentile(99)) : 0,
        delay_max_ms: sampled ? nanosToMillis(delay.max) : 0,
        // NaN when no time has passed since the previous read.
        utilization: Number.isFinite(utilization) ? Math.min(1, Math.max(0, utilization)) : 0
      }
      // reset() also drops perf_hooks' previous tick, so a stall beginning right at a read goes unmeasured.
      delay.reset()
      const memory = process.memoryUsage()
      return {
        eventLoop,
        memory: {
          rss_bytes: memory.rss,
          heap_used_bytes: memory.heapUsed,
          heap_total_bytes: memory.heapTotal,
          external_bytes: memory.external
        },
        uptime: process.uptime()
      }
    })

    const read = Effect.gen(function*() {
      const sample = yield* sampleLoop
      // Sequential, so the fd listing sees none of the other reads' files, only its own directory handle.
      const proc = yield* Effect.all({
        threads: readProc(() => fs.readFile("/proc/self/status", "utf8").then(parseThreads)),
        openFds: readProc(() => fs.readdir("/proc/self/fd").then((entries) => entries.length)),
        fdSoftLimit: readProc(() => fs.readFile("/proc/self/limits", "utf8").then(parseFdSoftLimit))
      })
      const pressure: ResourcePressure = {
        os_parallelism: os.availableParallelism(),
        process_threads: proc.threads,
        open_fds: proc.openFds,
        fd_soft_limit: proc.fdSoftLimit,
        event_loop: sample.eventLoop,
        memory: sample.memory,
        uptime_sec: sample.uptime
      }
      return pressure
    })

    return { read }
  }
)
