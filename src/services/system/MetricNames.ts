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

/**
 * The host's component and hook series: `phase` (a 0/1 gauge per `component` and `phase`), restarts per
 * `component`, invocations per `hook` and `outcome`, steps per `hook`, `component` and `outcome`, and
 * the step duration histogram per `hook` and `component`.
 */
export const HostMetricNames = Object.freeze({
  componentPhase: "corral_component_phase",
  componentRestartsTotal: "corral_component_restarts_total",
  hookInvocationsTotal: "corral_hook_invocations_total",
  hookStepsTotal: "corral_hook_steps_total",
  hookStepDuration: "corral_hook_step_duration_seconds"
} as const)

/** The broker's series: hellos per `outcome`, launches per `service`, rejects per `code`, backends per `state` (gauge). */
export const BrokerMetricNames = Object.freeze({
  hellosTotal: "corral_broker_hellos_total",
  launchesTotal: "corral_broker_launches_total",
  rejectsTotal: "corral_broker_rejects_total",
  backends: "corral_broker_backends"
} as const)

/** The standard process series (Prometheus client conventions) and the event-loop delay per `quantile`. */
export const ProcessMetricNames = Object.freeze({
  cpuSecondsTotal: "process_cpu_seconds_total",
  residentMemoryBytes: "process_resident_memory_bytes",
  openFds: "process_open_fds",
  maxFds: "process_max_fds",
  startTimeSeconds: "process_start_time_seconds",
  eventLoopDelay: "nodejs_eventloop_delay_seconds"
} as const)

/** One metric name of Corral's. */
export type MetricName =
  | (typeof ServerMetricNames)[keyof typeof ServerMetricNames]
  | (typeof RouteAlarmMetricNames)[keyof typeof RouteAlarmMetricNames]
  | (typeof HostMetricNames)[keyof typeof HostMetricNames]
  | (typeof BrokerMetricNames)[keyof typeof BrokerMetricNames]
  | (typeof ProcessMetricNames)[keyof typeof ProcessMetricNames]

/** Every metric name, in declaration order. */
export const allMetricNames: ReadonlyArray<MetricName> = Object.freeze([
  ...Object.values(ServerMetricNames),
  ...Object.values(RouteAlarmMetricNames),
  ...Object.values(HostMetricNames),
  ...Object.values(BrokerMetricNames),
  ...Object.values(ProcessMetricNames)
])
