/**
 * The host's series. Counters and the step-duration histogram are recorded as traces are written
 * (`withHostMetrics` wraps the TraceLog: every lifecycle event and invocation record passes through it);
 * component phases, broker backends and the `process_*` series are read when `/metrics` is scraped, so
 * a component removed by a reload leaves no stale phase behind.
 */
import { Context, Effect, Layer, Metric, MetricBoundaries, MetricKey, MetricLabel, MetricPair, MetricState } from "effect"
import { BackendRegistry } from "../../services/broker/BackendRegistry.js"
import { type ComponentView, Phase } from "../../services/host/Component.js"
import { HostMetrics } from "../../services/host/HostMetrics.js"
import { Supervisor } from "../../services/host/Supervisor.js"
import { type InvocationRecord, type LifecycleEvent, TraceLog } from "../../services/host/Traces.js"
import { HostMetricNames } from "../../services/system/MetricNames.js"
import { backendStatePairs } from "../broker/BrokerMetrics.js"
import { makeProcessMetrics } from "../system/ProcessMetrics.js"
import { renderPrometheus } from "../system/PrometheusText.js"

const restartsTotal = Metric.counter(HostMetricNames.componentRestartsTotal, {
  description: "Starts of a component after its first: automatic restarts and operator starts and restarts"
})
const invocationsTotal = Metric.counter(HostMetricNames.hookInvocationsTotal, {
  description: "Hook runs, by hook and the decision they ended with"
})
const stepsTotal = Metric.counter(HostMetricNames.hookStepsTotal, {
  description: "Hook steps, by hook, component and outcome (allow, deny, modify, failed, skipped)"
})
const stepDuration = Metric.histogram(
  HostMetricNames.hookStepDuration,
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Duration of the hook steps that ran, by hook and component, in seconds"
)

/** Label sets kept for reuse; beyond this many, label arrays are built per update (correct, only slower). */
const maxCachedLabelSets = 1024
const labelSets = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

/**
 * The same label array for the same names and values: Effect caches a metric's hook per label array, so
 * a reused array skips hashing the tags on every update (a hook run with two steps: ~80 µs → ~7 µs measured).
 * Values come from the config (hook and component ids) and fixed literals, so the set stays small.
 */
const labelsOf = (...pairs: ReadonlyArray<readonly [string, string]>): ReadonlyArray<MetricLabel.MetricLabel> => {
  const key = pairs.map(([name, value]) => `${name}\u0000${value}`).join("\u0000")
  const cached = labelSets.get(key)
  if (cached !== undefined) return cached
  const labels = pairs.map(([name, value]) => MetricLabel.make(name, value))
  if (labelSets.size < maxCachedLabelSets) labelSets.set(key, labels)
  return labels
}

const restartsOf = (component: string) => labelsOf(["component", component])

/** Counts a restart: a component entering `starting` from anything but `configured` (its first start). */
export const recordLifecycle = (event: LifecycleEvent): Effect.Effect<void> =>
  event.to === "starting" && event.from !== "configured"
    ? Effect.sync(() => restartsTotal.unsafeUpdate(1, restartsOf(event.component)))
    : Effect.void

/** Counts a hook run, its steps by outcome, and the duration of each step that ran. */
export const recordInvocation = (record: InvocationRecord): Effect.Effect<void> =>
  Effect.sync(() => {
    invocationsTotal.unsafeUpdate(1, labelsOf(["hook", record.hook], ["outcome", record.decision.decision]))
    for (const step of record.steps) {
      stepsTotal.unsafeUpdate(1, labelsOf(["hook", record.hook], ["component", step.component], ["outcome", step.outcome]))
      // A skipped step never ran: it has no duration to record.
      if (step.outcome !== "skipped") {
        stepDuration.unsafeUpdate(step.duration_ms / 1000, labelsOf(["hook", record.hook], ["component", step.component]))
      }
    }
  })

/** The trace log, also recording each lifecycle event and invocation record in the host's metrics. */
export const withHostMetrics = <E, R>(traces: Layer.Layer<TraceLog, E, R>): Layer.Layer<TraceLog, E, R> =>
  Layer.map(traces, (context) => {
    const inner = Context.get(context, TraceLog)
    return Context.make(TraceLog, {
      lifecycle: (event) => Effect.zipRight(inner.lifecycle(event), recordLifecycle(event)),
      invocation: (record) => Effect.zipRight(inner.invocation(record), recordInvocation(record))
    })
  })

const phaseKey = MetricKey.gauge(HostMetricNames.componentPhase, {
  description: "1 for the phase each component is in, 0 for the others"
})

/** What a scrape needs of a component. */
export type ComponentPhase = Pick<ComponentView, "id" | "phase">

/** The `corral_component_phase{component,phase}` series: one per phase per component, 1 for the current one. */
export const componentPhasePairs = (views: ReadonlyArray<ComponentPhase>): ReadonlyArray<MetricPair.MetricPair.Untyped> =>
  views.flatMap((view) =>
    Phase.literals.map((phase) =>
      MetricPair.unsafeMake(
        MetricKey.tagged(MetricKey.tagged(phaseKey, "component", view.id), "phase", phase),
        MetricState.gauge(view.phase === phase ? 1 : 0)
      )))

/**
 * The whole Prometheus text: the global registry (server, route-alarm, hook, broker counters) and the
 * scrape-time series of `components`, `backends` and the process.
 */
export const renderHostMetrics = (scraped: {
  readonly components: ReadonlyArray<ComponentPhase>
  readonly backends: ReadonlyArray<{ readonly state: string }>
  readonly process: ReadonlyArray<MetricPair.MetricPair.Untyped>
}): Effect.Effect<string> =>
  Effect.gen(function*() {
    // Every component shows a restart count, 0 before its first restart.
    yield* Effect.sync(() => {
      for (const component of scraped.components) restartsTotal.unsafeUpdate(0, restartsOf(component.id))
    })
    const registered = yield* Metric.snapshot
    return renderPrometheus([
      ...registered,
      ...componentPhasePairs(scraped.components),
      ...backendStatePairs(scraped.backends),
      ...scraped.process
    ])
  })

/**
 * The host's metrics on its supervisor and broker registry: `snapshot` renders the global registry (server,
 * route-alarm, hook, broker counters) with the scrape-time series. Event-loop sampling lives as long as the layer.
 */
export const HostMetricsLive: Layer.Layer<HostMetrics, never, Supervisor | BackendRegistry> = Layer.scoped(
  HostMetrics,
  Effect.gen(function*() {
    const supervisor = yield* Supervisor
    const registry = yield* BackendRegistry
    const processMetrics = yield* makeProcessMetrics
    const snapshot = Effect.flatMap(
      Effect.all({ components: supervisor.list, backends: registry.snapshot, process: processMetrics.read }),
      renderHostMetrics
    )
    return HostMetrics.of({ snapshot })
  })
)

/** The whole Prometheus text of the current host (what `GET /metrics` answers). */
export const hostMetricsSnapshot: Effect.Effect<string, never, HostMetrics> = Effect.flatMap(HostMetrics, (metrics) => metrics.snapshot)
