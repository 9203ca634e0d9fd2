/**
 * HostMetrics: what `GET /metrics` serves — every series of the host in Prometheus text: the servers',
 * components' phases and restarts, hooks' invocations and steps, the broker's, and the process's own.
 */
import { Context } from "effect"
import type { Effect } from "effect"

/** The host's metrics. */
export interface HostMetricsShape {
  /** The whole Prometheus text (0.0.4), with scrape-time values (phases, backends, `process_*`) read now. */
  readonly snapshot: Effect.Effect<string>
}

/** The current host's metrics. */
export class HostMetrics extends Context.Tag("corral/HostMetrics")<HostMetrics, HostMetricsShape>() {}
