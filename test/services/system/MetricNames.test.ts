import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { ServerMetrics } from "../../../src/layers/server/ServerMetrics.js"
import { countLaunch, registerBrokerMetrics } from "../../../src/layers/broker/BrokerMetrics.js"
import { recordInvocation, recordLifecycle, renderHostMetrics } from "../../../src/layers/host/HostMetrics.js"
import { makeProcessMetrics } from "../../../src/layers/system/ProcessMetrics.js"
import { routeAlarmActive, routeAlarmsRaisedTotal } from "../../../src/services/server/RouteAlarms.js"
import {
  allMetricNames,
  BrokerMetricNames,
  HostMetricNames,
  ProcessMetricNames,
  RouteAlarmMetricNames,
  ServerMetricNames
} from "../../../src/services/system/MetricNames.js"

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
  "corral_route_alarm_active",
  "corral_component_phase",
  "corral_component_restarts_total",
  "corral_hook_invocations_total",
  "corral_hook_steps_total",
  "corral_hook_step_duration_seconds",
  "corral_broker_hellos_total",
  "corral_broker_launches_total",
  "corral_broker_rejects_total",
  "corral_broker_backends",
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_open_fds",
  "process_max_fds",
  "process_start_time_seconds",
  "nodejs_eventloop_delay_seconds"
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
    expect(Object.isFrozen(HostMetricNames)).toBe(true)
    expect(Object.isFrozen(BrokerMetricNames)).toBe(true)
    expect(Object.isFrozen(ProcessMetricNames)).toBe(true)
    expect(Object.isFrozen(allMetricNames)).toBe(true)
  })

  it.scoped("is what a scrape shows: every family, with its Prometheus type", () =>
    Effect.gen(function*() {
      // Touch every series once, so the global registry holds each metric the code defines.
      const server = new ServerMetrics("metric-names-test")
      server.acceptError(0)
      server.requestFinished("/golden", 0.001)
      yield* Metric.increment(Metric.tagged(Metric.tagged(routeAlarmsRaisedTotal, "server", "metric-names-test"), "route", "/golden"))
      yield* Metric.set(Metric.tagged(Metric.tagged(routeAlarmActive, "server", "metric-names-test"), "route", "/golden"), 0)
      yield* registerBrokerMetrics
      yield* countLaunch("golden")
      yield* recordLifecycle({ at: "2024-01-01T00:00:00.000Z", component: "golden", from: "ready", to: "starting", reason: "crashed", pid: null })
      yield* recordInvocation({
        at: "2024-01-01T00:00:00.000Z",
        hook: "golden",
        envelope_id: "e",
        subject: "s",
        decision: { decision: "allow" },
        failure_policy: "fail_closed",
        steps: [{ component: "golden", outcome: "allow", duration_ms: 1 }],
        duration_ms: 1
      })
      const processMetrics = yield* makeProcessMetrics
      const text = yield* renderHostMetrics({
        components: [{ id: "golden", phase: "ready" }],
        backends: [],
        process: yield* processMetrics.read
      })
      // Effect's own fiber series (`effect_…`) appear when the test runtime enables them: not Corral's names.
      const families = text.split("\n").filter((line) => line.startsWith("# TYPE ") && !line.startsWith("# TYPE effect_"))
        .map((line) => line.slice("# TYPE ".length))
      expect(families).toStrictEqual([
        "corral_accept_errors_total counter",
        "corral_accepted_total counter",
        "corral_active_connections gauge",
        "corral_broker_backends gauge",
        "corral_broker_hellos_total counter",
        "corral_broker_launches_total counter",
        "corral_broker_rejects_total counter",
        "corral_client_errors_total counter",
        "corral_component_phase gauge",
        "corral_component_restarts_total counter",
        "corral_handler_errors_total counter",
        "corral_handler_timeouts_total counter",
        "corral_hook_invocations_total counter",
        "corral_hook_step_duration_seconds histogram",
        "corral_hook_steps_total counter",
        "corral_in_flight_requests gauge",
        "corral_last_accept_error_timestamp_seconds gauge",
        "corral_last_handler_error_timestamp_seconds gauge",
        "corral_rejected_over_capacity_total counter",
        "corral_request_duration_seconds histogram",
        "corral_requests_total counter",
        "corral_route_alarm_active gauge",
        "corral_route_alarms_raised_total counter",
        "corral_shutdown_drain_ms gauge",
        "nodejs_eventloop_delay_seconds gauge",
        "process_cpu_seconds_total counter",
        "process_max_fds gauge",
        "process_open_fds gauge",
        "process_resident_memory_bytes gauge",
        "process_start_time_seconds gauge"
      ])
      expect(families.map((family) => family.split(" ")[0]).sort()).toStrictEqual([...goldenNames].sort())
    }))
})
