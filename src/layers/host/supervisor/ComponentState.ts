/**
 * What the supervisor knows of one component: its phase and process, its restart budget, its last
 * probes and error, and the handles (lifecycle fiber, child, command lock) that act on it.
 */
import type { Effect, Fiber, Option, Ref, SubscriptionRef } from "effect"
import type { Phase } from "../../../services/host/Component.js"
import type { ComponentConfig } from "../../../services/host/HostConfig.js"
import type { ModuleReport } from "../../../services/host/MiddlewareContract.js"
import type { ChildHandle, StopOutcome } from "../../../services/host/ProcessLauncher.js"
import { initialRestartBudget, type RestartBudgetState } from "../../../services/policies/RestartBudget.js"

/** One readiness or health probe, kept for status. */
export interface Probe {
  readonly at: string
  readonly ok: boolean
  readonly detail: string
}

/** The published state of one component. */
export interface ComponentState {
  readonly phase: Phase
  readonly pid: number | null
  readonly endpoint: string | null
  /** The launch token of the current run (`CORRAL_MODULE_TOKEN`); null between runs. Never shown. */
  readonly token: string | null
  readonly budget: RestartBudgetState
  readonly nextAttemptAt: number | null
  readonly lastReadiness: Probe | null
  readonly lastHealth: Probe | null
  readonly lastError: string | null
  readonly report: ModuleReport | null
  readonly unhealthyStreak: number
  /** How the last stop of the process went, for the `stopped` event. */
  readonly lastStop: StopOutcome | null
}

/** One component under the supervisor. */
export interface Managed {
  readonly id: string
  readonly config: ComponentConfig
  readonly state: SubscriptionRef.SubscriptionRef<ComponentState>
  readonly lifecycle: Ref.Ref<Option.Option<Fiber.RuntimeFiber<void>>>
  readonly child: Ref.Ref<Option.Option<ChildHandle>>
  /** Serializes operator commands on this component. */
  readonly commands: Effect.Semaphore
}

/** Only `http_local_json` components have a process the host supervises. */
export const isSupervised = (component: ComponentConfig): boolean => component.kind === "http_local_json"

/** A component's state before anything happened to it. */
export const initialState = (component: ComponentConfig): ComponentState => ({
  phase: isSupervised(component) ? "configured" : "ready",
  pid: null,
  endpoint: component.kind === "local_http_json" ? component.http?.endpoint ?? null : null,
  token: null,
  budget: initialRestartBudget,
  nextAttemptAt: null,
  lastReadiness: null,
  lastHealth: null,
  lastError: null,
  report: null,
  unhealthyStreak: 0,
  lastStop: null
})
