/** An event-loop delay histogram (10 ms resolution), enabled for the life of the scope. */
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { IntervalHistogram } from "node:perf_hooks"
import { Effect } from "effect"
import type { Scope } from "effect"

/** Each reader resets its own histogram, so every reader makes its own. */
export const makeEventLoopDelayHistogram: Effect.Effect<IntervalHistogram, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
    return histogram
  }),
  (histogram) => Effect.sync(() => histogram.disable())
)
