/**
 * The host's series. Counters and the step-duration histogram are recorded as traces are written
 * (`withHostMetrics` wraps the TraceLog: every lifecycle event and invocation record passes through it);
 * component phases, broker backends and the `process_*` series are read when `/metrics` is scraped, so
 * a component removed by a reload leaves no stale phase behind.
 */
import { Context, Effect, Layer, Metric, MetricBoundaries, MetricKey, MetricLabel, MetricPair, MetricState } from "effect"
import type { MetricHook } from "effect"
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
const invocationsKey = MetricKey.counter(HostMetricNames.hookInvocationsTotal, {
  description: "Hook runs, by hook and the decision they ended with"
})
const stepsKey = MetricKey.counter(HostMetricNames.hookStepsTotal, {
  description: "Hook steps, by hook, component and outcome (allow, deny, modify, failed, skipped)"
})
const stepDurationKey = MetricKey.histogram(
  HostMetricNames.hookStepDuration,
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Duration of the hook steps that ran, by hook and component, in seconds"
)

/** A series to update: the registry's hook of a metric with one set of labels. */
type SeriesHook = MetricHook.MetricHook<number, unknown>

/** Label sets whose series are kept for reuse; beyond this many, a series is looked up per update (correct, only slower). */
const maxCachedSeries = 1024

/**
 * The series of each label set, found in the registry once: an update is then a few map reads and the
 * hook's own write. (An update by tags builds the tagged key and hashes its labels each time.) Values
 * come from the config (hook and component ids) and fixed literals, so the set stays small.
 */
class SeriesCache {
  private readonly byKey = new Map<string, SeriesHook>()

  constructor(private readonly find: (labels: ReadonlyArray<MetricLabel.MetricLabel>) => SeriesHook) {}

  /** The series of `key` (its label values joined), labelled by what `labels` builds (only on a miss). */
  get(key: string, labels: () => ReadonlyArray<MetricLabel.MetricLabel>): SeriesHook {
    const cached = this.byKey.get(key)
    if (cached !== undefined) return cached
    const series = this.find(labels())
    if (this.byKey.size < maxCachedSeries) this.byKey.set(key, series)
    return series
  }
}

const invocationSeries = new SeriesCache((labels) => Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(invocationsKey, labels)))
const stepSeries = new SeriesCache((labels) => Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(stepsKey, labels)))
const durationSeries = new SeriesCache((labels) => Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(stepDurationKey, labels)))
const restartLabels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

const restartsOf = (component: string): ReadonlyArray<MetricLabel.MetricLabel> => {
  const cached = restartLabels.get(component)
  if (cached !== undefined) return cached
  const labels = [MetricLabel.make("component", component)]
  if (restartLabels.size < maxCachedSeries) restartLabels.set(component, labels)
  return labels
}

/** Counts a restart: a component entering `starting` from anything but `configured` (its first start). */
export const recordLifecycle = (event: LifecycleEvent): Effect.Effect<void> =>
  event.to === "starting" && event.from !== "configured"
    ? Effect.sync(() => restartsTotal.unsafeUpdate(1, restartsOf(event.component)))
    : Effect.void

/** Counts a hook run, its steps by outcome, and the duration of each step that ran. */
export const recordInvocation = (record: InvocationRecord): Effect.Effect<void> =>
  Effect.sync(() => {
    const hook = record.hook
    const outcome = record.decision.decision
    invocationSeries.get(`${hook}\u0000${outcome}`, () => [MetricLabel.make("hook", hook), MetricLabel.make("outcome", outcome)]).update(1)
    for (const step of record.steps) {
      const { component } = step
      const stepKey = `${hook}\u0000${component}`
      stepSeries.get(`${stepKey}\u0000${step.outcome}`, () => [
        MetricLabel.make("hook", hook),
        MetricLabel.make("component", component),
        MetricLabel.make("outcome", step.outcome)
      ]).update(1)
      // A skipped step never ran: it has no duration to record.
      if (step.outcome !== "skipped") {
        durationSeries.get(stepKey, () => [MetricLabel.make("hook", hook), MetricLabel.make("component", component)]).update(step.duration_ms / 1000)
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
