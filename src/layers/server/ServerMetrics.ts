/**
 * The bounded server's Effect metrics. Their names are a contract (Prometheus series) kept in
 * services/system/MetricNames.ts; labels are fixed arrays per server and route so the hot path hits
 * Effect's per-label hook cache.
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"
import type { ServerMetricsSnapshot } from "../../services/server/BoundedServer.js"
import { ServerMetricNames } from "../../services/system/MetricNames.js"

const activeConnections = Metric.gauge(ServerMetricNames.activeConnections, {
  description: "Connections holding a connection permit"
})
const inFlight = Metric.gauge(ServerMetricNames.inFlight, { description: "Handler runs holding a request permit" })
const acceptedTotal = Metric.counter(ServerMetricNames.acceptedTotal, {
  description: "Connections accepted with a permit"
})
const rejectedTotal = Metric.counter(ServerMetricNames.rejectedOverCapacityTotal, {
  description: "Connections (gate=connection) and requests (gate=request) refused over capacity"
})
const requestsTotal = Metric.counter(ServerMetricNames.requestsTotal, { description: "Handler runs started" })
const handlerErrorsTotal = Metric.counter(ServerMetricNames.handlerErrorsTotal, {
  description: "Handler runs that ended in a defect or an unhandled failure"
})
const handlerTimeoutsTotal = Metric.counter(ServerMetricNames.handlerTimeoutsTotal, {
  description: "Handler runs interrupted at their deadline"
})
const clientErrorsTotal = Metric.counter(ServerMetricNames.clientErrorsTotal, {
  description: "Requests refused for the client's fault (408, 413, 400)"
})
const acceptErrorsTotal = Metric.counter(ServerMetricNames.acceptErrorsTotal, { description: "Failed accepts" })
const shutdownDrainMs = Metric.gauge(ServerMetricNames.shutdownDrainMs, {
  description: "Time the last drain took"
})
const lastAcceptErrorTimestamp = Metric.gauge(ServerMetricNames.lastAcceptErrorTimestamp, {
  description: "When the last accept error happened"
})
const lastHandlerErrorTimestamp = Metric.gauge(ServerMetricNames.lastHandlerErrorTimestamp, {
  description: "When the last handler error happened"
})
const requestDuration = Metric.histogram(
  ServerMetricNames.requestDuration,
  MetricBoundaries.fromIterable([0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Handler run duration per route"
)

/** Distinct routes labelled per server; further routes share the label `(other)`. */
const maxRouteLabels = 64

/** Records one server's metrics; every method is synchronous and allocation-free on the hot path. */
export class ServerMetrics {
  private readonly labels: ReadonlyArray<MetricLabel.MetricLabel>
  private readonly connectionGate: ReadonlyArray<MetricLabel.MetricLabel>
  private readonly requestGate: ReadonlyArray<MetricLabel.MetricLabel>
  private readonly routeLabels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  /** Counter values when this server started: series outlive a server, its snapshot does not. */
  private readonly baseline: Readonly<Record<string, number>>

  constructor(readonly server: string) {
    this.labels = [MetricLabel.make("server", server)]
    this.connectionGate = [...this.labels, MetricLabel.make("gate", "connection")]
    this.requestGate = [...this.labels, MetricLabel.make("gate", "request")]
    // Register every series at zero so a scrape shows them before the first event.
    for (const metric of [acceptedTotal, requestsTotal, handlerErrorsTotal, handlerTimeoutsTotal, clientErrorsTotal]) {
      metric.unsafeUpdate(0, this.labels)
    }
    rejectedTotal.unsafeUpdate(0, this.connectionGate)
    rejectedTotal.unsafeUpdate(0, this.requestGate)
    for (const gauge of [activeConnections, inFlight, shutdownDrainMs, lastAcceptErrorTimestamp, lastHandlerErrorTimestamp]) {
      gauge.unsafeModify(0, this.labels)
    }
    this.baseline = this.counters()
  }

  private counters(): Record<string, number> {
    return {
      accepted: acceptedTotal.unsafeValue(this.labels).count,
      rejectedConnections: rejectedTotal.unsafeValue(this.connectionGate).count,
      rejectedRequests: rejectedTotal.unsafeValue(this.requestGate).count,
      requests: requestsTotal.unsafeValue(this.labels).count,
      handlerErrors: handlerErrorsTotal.unsafeValue(this.labels).count,
      handlerTimeouts: handlerTimeoutsTotal.unsafeValue(this.labels).count,
      clientErrors: clientErrorsTotal.unsafeValue(this.labels).count
    }
  }

  /** Route label for a raw route key, bounded to `maxRouteLabels` distinct values. */
  routeKey(route: string): string {
    if (this.routeLabels.has(route) || this.routeLabels.size < maxRouteLabels) return route
    return "(other)"
  }

  connectionAccepted(): void {
    acceptedTotal.unsafeUpdate(1, this.labels)
    activeConnections.unsafeModify(1, this.labels)
  }
  connectionClosed(): void {
    activeConnections.unsafeModify(-1, this.labels)
  }
  rejectedConnection(): void {
    rejectedTotal.unsafeUpdate(1, this.connectionGate)
  }
  rejectedRequest(): void {
    rejectedTotal.unsafeUpdate(1, this.requestGate)
  }
  requestStarted(): void {
    requestsTotal.unsafeUpdate(1, this.labels)
    inFlight.unsafeModify(1, this.labels)
  }
  requestFinished(route: string, seconds: number): void {
    inFlight.unsafeModify(-1, this.labels)
    let labels = this.routeLabels.get(route)
    if (labels === undefined) {
      labels = [...this.labels, MetricLabel.make("route", route)]
      this.routeLabels.set(route, labels)
    }
    requestDuration.unsafeUpdate(seconds, labels)
  }
  handlerError(atMillis: number): void {
    handlerErrorsTotal.unsafeUpdate(1, this.labels)
    lastHandlerErrorTimestamp.unsafeUpdate(atMillis / 1000, this.labels)
  }
  handlerTimeout(): void {
    handlerTimeoutsTotal.unsafeUpdate(1, this.labels)
  }
  clientError(): void {
    clientErrorsTotal.unsafeUpdate(1, this.labels)
  }
  acceptError(atMillis: number): void {
    acceptErrorsTotal.unsafeUpdate(1, this.labels)
    lastAcceptErrorTimestamp.unsafeUpdate(atMillis / 1000, this.labels)
  }
  drained(millis: number): void {
    shutdownDrainMs.unsafeUpdate(millis, this.labels)
  }

  /** Reads the counters back into the typed snapshot (last errors come from the server). */
  snapshot(
    lastErrors: Pick<ServerMetricsSnapshot, "last_accept_error" | "last_handler_error" | "shutdown_drain_ms">
  ): ServerMetricsSnapshot {
    const now = this.counters()
    const since = (key: string): number => (now[key] ?? 0) - (this.baseline[key] ?? 0)
    return {
      server: this.server,
      active_connections: activeConnections.unsafeValue(this.labels).value,
      in_flight: inFlight.unsafeValue(this.labels).value,
      accepted_total: since("accepted"),
      rejected_over_capacity_total: since("rejectedConnections") + since("rejectedRequests"),
      rejected_connections_total: since("rejectedConnections"),
      rejected_requests_total: since("rejectedRequests"),
      requests_total: since("requests"),
      handler_errors_total: since("handlerErrors"),
      handler_timeouts_total: since("handlerTimeouts"),
      client_errors_total: since("clientErrors"),
      ...lastErrors
    }
  }
}
