/**
 * Every metric name Corral registers, in one module: the names are a wire contract (what Prometheus
 * scrapes, dashboards and alerts query), pinned by test/services/system/MetricNames.test.ts.
 */

/** The bounded server's series, each tagged `server` (`rejected…` also `gate`, the duration also `route`). */
export const ServerMetricNames = Object.freeze({
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
} as const)

/** Route alarm series, tagged `server` and `route`: alarms raised (counter) and raised now (gauge, 1 or 0). */
export const RouteAlarmMetricNames = Object.freeze({
  raisedTotal: "corral_route_alarms_raised_total",
  active: "corral_route_alarm_active"
} as const)

/** One metric name of Corral's. */
export type MetricName =
  | (typeof ServerMetricNames)[keyof typeof ServerMetricNames]
  | (typeof RouteAlarmMetricNames)[keyof typeof RouteAlarmMetricNames]

/** Every metric name, in declaration order. */
export const allMetricNames: ReadonlyArray<MetricName> = Object.freeze([
  ...Object.values(ServerMetricNames),
  ...Object.values(RouteAlarmMetricNames)
])
