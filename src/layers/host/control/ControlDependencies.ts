/**
 * What the control API's routes read and act on, gathered once by the control server, and how long its
 * long-lived answers (event streams, log follows) last.
 */
import type { Effect } from "effect"
import type { AdminSnapshot } from "../../../services/broker/Broker.js"
import type { HookRunnerShape } from "../../../services/host/HookRunner.js"
import type { HostConfig } from "../../../services/host/HostConfig.js"
import type { HostEventsShape } from "../../../services/host/HostEvents.js"
import type { HostReloadShape } from "../../../services/host/HostReload.js"
import type { SupervisorShape } from "../../../services/host/Supervisor.js"
import type { BoundedServerShape } from "../../../services/server/BoundedServer.js"
import type { ResourcePressureMonitor } from "../../system/ResourcePressure.js"
import type { HookPermits } from "./HookPermits.js"
import type { ControlCredentials } from "./RequestAuth.js"
import type { StreamPermits } from "./StreamPermits.js"

/** How long streams last and how often they speak (tests shorten them). */
export interface StreamTiming {
  /** Between `: heartbeat` comments of `/v1/events` (15 s). */
  readonly heartbeatMs: number
  /** The longest an event stream or a log follow stays open (1 h); the client reconnects. */
  readonly maxStreamMs: number
  /** Between polls of a followed log. */
  readonly followPollMs: number
}

/** The default stream timing. */
export const defaultStreamTiming: StreamTiming = { heartbeatMs: 15_000, maxStreamMs: 60 * 60 * 1000, followPollMs: 250 }

/** Everything the routes need. */
export interface ControlDependencies {
  readonly credentials: ControlCredentials
  readonly supervisor: SupervisorShape
  readonly hooks: HookRunnerShape
  /** The control server itself (its readiness, metrics and URL); resolved once it listens. */
  readonly server: Effect.Effect<BoundedServerShape>
  readonly pressure: ResourcePressureMonitor
  readonly broker: Effect.Effect<AdminSnapshot>
  readonly events: HostEventsShape
  /** The whole `/metrics` text: the server's series and the host's (phases, hooks, broker, process). */
  readonly metrics: Effect.Effect<string>
  readonly reload: HostReloadShape
  /** The effective config now. */
  readonly config: Effect.Effect<HostConfig>
  /** The files the config is merged from, in merge order. */
  readonly configSources: Effect.Effect<ReadonlyArray<string>>
  /** `logs/` of the data dir. */
  readonly logsDir: string
  /** The status page's files. */
  readonly assetsDir: string
  /** Hook invocations at once (`host.control.max_hook_invocations`): hook traffic cannot take the operator's capacity. */
  readonly hookPermits: HookPermits
  readonly streamPermits: StreamPermits
  /** Seconds a client refused for want of a permit is told to wait. */
  readonly retryAfterSeconds: number
  readonly timing: StreamTiming
}
