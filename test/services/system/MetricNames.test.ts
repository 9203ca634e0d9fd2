import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { ServerMetrics } from "../../../src/layers/server/ServerMetrics.js"
import { prometheusSnapshotWith } from "../../../src/layers/system/PrometheusText.js"
import { routeAlarmActive, routeAlarmsRaisedTotal } from "../../../src/services/server/RouteAlarms.js"
import { allMetricNames, RouteAlarmMetricNames, ServerMetricNames } from "../../../src/services/system/MetricNames.js"

// Golden: these are the series Prometheus scrapes. A failure here means a rename or a new metric;
// make it on purpose and update this list, the README and any dashboards together.
const goldenNames = [
  "corral_active_connections",
  "corral_in_flight_requests",
  "corral_accepted_total",
  "corral_rejected_over_capacity_total",
  "corral_requests_total",
  "corral_handler_errors_total",
  "corral_handler_timeouts_total",
  "corral_client_errors_total",
  "corral_accept_errors_total",
  "corral_shutdown_drain_ms",
  "corral_last_accept_error_timestamp_seconds",
  "corral_last_handler_error_timestamp_seconds",
  "corral_request_duration_seconds",
  "corral_route_alarms_raised_total",
  "corral_route_alarm_active"
]

describe("MetricNames", () => {
  it("lists exactly the pinned metric names, in order", () => {
    expect(allMetricNames).toStrictEqual(goldenNames)
  })

  it("keeps each name under its pinned key", () => {
    expect(ServerMetricNames).toStrictEqual({
      activeConnections: "corral_active_connections",
      inFlight: "corral_in_flight_requests",
      acceptedTotal: "corral_accepted_total",
      rejectedOverCapacityTotal: "corral_rejected_over_capacity_total",
      requestsTotal: "corral_requests_total",
      handlerErrorsTotal: "corral_handler_errors_total",
      handlerTimeoutsTotal: "corral_handler_timeouts_total",
      clientErrorsTotal: "corral_client_errors_total",
      acceptErrorsTotal: "corral_accept_errors_total",
      shutdownDrainMs: "corral_shutdown_drain_ms",
      lastAcceptErrorTimestamp: "corral_last_accept_error_timestamp_seconds",
      lastHandlerErrorTimestamp: "corral_last_handler_error_timestamp_seconds",
      requestDuration: "corral_request_duration_seconds"
    })
    expect(RouteAlarmMetricNames).toStrictEqual({
      raisedTotal: "corral_route_alarms_raised_total",
      active: "corral_route_alarm_active"
    })
  })

  it("cannot be changed at run time", () => {
    expect(Object.isFrozen(ServerMetricNames)).toBe(true)
    expect(Object.isFrozen(RouteAlarmMetricNames)).toBe(true)
    expect(Object.isFrozen(allMetricNames)).toBe(true)
  })

  it.effect("is what a scrape shows: every corral_ family, with its Prometheus type", () =>
    Effect.gen(function*() {
      // Touch every series once, so the global registry holds each metric the code defines.
      const server = new ServerMetrics("metric-names-test")
      server.acceptError(0)
      server.requestFinished("/golden", 0.001)
      yield* Metric.increment(Metric.tagged(Metric.tagged(routeAlarmsRaisedTotal, "server", "metric-names-test"), "route", "/golden"))
      yield* Metric.set(Metric.tagged(Metric.tagged(routeAlarmActive, "server", "metric-names-test"), "route", "/golden"), 0)
      const text = yield* prometheusSnapshotWith({ prefix: "corral_" })
      const families = text.split("\n").filter((line) => line.startsWith("# TYPE ")).map((line) => line.slice("# TYPE ".length))
      expect(families).toStrictEqual([
        "corral_accept_errors_total counter",
        "corral_accepted_total counter",
        "corral_active_connections gauge",
        "corral_client_errors_total counter",
        "corral_handler_errors_total counter",
        "corral_handler_timeouts_total counter",
        "corral_in_flight_requests gauge",
        "corral_last_accept_error_timestamp_seconds gauge",
        "corral_last_handler_error_timestamp_seconds gauge",
        "corral_rejected_over_capacity_total counter",
        "corral_request_duration_seconds histogram",
        "corral_requests_total counter",
        "corral_route_alarm_active gauge",
        "corral_route_alarms_raised_total counter",
        "corral_shutdown_drain_ms gauge"
      ])
      expect(families.map((family) => family.split(" ")[0]).sort()).toStrictEqual([...goldenNames].sort())
    }))
})
