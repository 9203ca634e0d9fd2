import { Metric, Schema, type Effect } from "effect"
import type { RouteFailureKind } from "../policies/RouteAlarm.js"
import { RouteAlarmMetricNames } from "../system/MetricNames.js"

/** Counter of alarms raised, tagged `server` and `route`. The name is a wire contract (MetricNames). */
export const routeAlarmsRaisedMetricName = RouteAlarmMetricNames.raisedTotal

/** Gauge, 1 while a route's alarm is raised and 0 once it cleared, tagged `server` and `route` (MetricNames). */
export const routeAlarmActiveMetricName = RouteAlarmMetricNames.active

/** Alarms raised per route; tag with `Metric.tagged` (data-first) to keep the counter type. */
export const routeAlarmsRaisedTotal = Metric.counter(routeAlarmsRaisedMetricName, {
  description: "Route alarms raised: repeated defects or timeouts on one route inside the window"
})

/** Whether a route's alarm is raised (1) or not (0). */
export const routeAlarmActive = Metric.gauge(routeAlarmActiveMetricName, {
  description: "1 while the route's alarm is raised, 0 once it cleared"
})

/** The route that routes beyond `maxRoutes` are folded into. */
export const otherRoute = "(other)"

/** A failure kind as it appears in readiness reports. */
export const RouteFailureKindSchema: Schema.Schema<RouteFailureKind> = Schema.Literal("defect", "timeout")

/** A route whose alarm is raised, as readiness reports it (times are ISO 8601 strings). */
export const AlarmedRoute = Schema.Struct({
  route: Schema.String,
  raised_at: Schema.String,
  failures_in_window: Schema.Number,
  last_failure: Schema.NullOr(
    Schema.Struct({
      kind: RouteFailureKindSchema,
      message: Schema.String,
      at: Schema.String
    })
  )
})

/** A route whose alarm is raised, as readiness reports it. */
export type AlarmedRoute = typeof AlarmedRoute.Type

/** Per-route alarms of one HTTP server: repeated defects or timeouts on a route raise an alarm. */
export interface RouteAlarms {
  /** The server the alarms belong to (the `server` tag of the metrics and logs). */
  readonly serverName: string
  /** Records a defect or timeout on `route`; logs an error and counts it when this raises the alarm. */
  readonly recordFailure: (route: string, kind: RouteFailureKind, message: string) => Effect.Effect<void>
  /** Records a completed request on `route`; one `Ref.get` and no write unless the route is alarmed. */
  readonly recordSuccess: (route: string) => Effect.Effect<void>
  /**
   * Routes whose alarm is raised, oldest alarm first; the server is not ready while this is non-empty.
   * Reading it first clears (and logs) the alarms that have been quiet for the policy's `quietMs`.
   */
  readonly alarmed: Effect.Effect<ReadonlyArray<AlarmedRoute>>
}
