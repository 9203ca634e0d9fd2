/**
 * What the supervisor knows of one component: its phase and process, its restart budget, its last
 * probes and error, and the handles (lifecycle fiber, child, command lock) that act on it.
 */
import { Effect, type Fiber, Option, Ref, SubscriptionRef } from "effect"
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
  /** When the current process was launched (epoch ms, the Clock's); null when none runs. */
  readonly startedAt: number | null
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
  /** The last lines of output of the last process, kept once it has exited (the live ones come from the child). */
  readonly recentLog: ReadonlyArray<string>
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
  /** Set (under `commands`) once a reload removed or replaced this entry: a command waiting for it looks the id up again. */
  readonly retired: Ref.Ref<boolean>
  /**
   * Operator commands (start, stop, restart) that have acted on this entry, bumped under `commands`: a
   * start wave starts the component only if none acted since the wave began, so it never undoes one.
   */
  readonly commandsIssued: Ref.Ref<number>
}

/** Only `http_local_json` components have a process the host supervises. */
export const isSupervised = (component: ComponentConfig): boolean => component.kind === "http_local_json"

/** Why an operator cannot start, stop or restart `component`, or undefined when they can. */
export const whyNotCommandable = (component: ComponentConfig): string | undefined =>
  !isSupervised(component)
    ? `it is of kind ${component.kind}, whose process the host does not run`
    : !component.enabled
    ? "it is disabled (enabled: false); set enabled: true in the config and reload"
    : undefined

/** A component's state before anything happened to it. */
export const initialState = (component: ComponentConfig): ComponentState => ({
  phase: isSupervised(component) ? "configured" : "ready",
  pid: null,
  startedAt: null,
  endpoint: component.kind === "local_http_json" ? component.http?.endpoint ?? null : null,
  token: null,
  budget: initialRestartBudget,
  nextAttemptAt: null,
  lastReadiness: null,
  lastHealth: null,
  lastError: null,
  report: null,
  unhealthyStreak: 0,
  lastStop: null,
  recentLog: []
})

/** The state patch of a component whose process is gone. */
export const noProcess = { pid: null, startedAt: null, endpoint: null } as const

/** Settled phases: nothing is under way (`starting`, `stopping`), so an operator's wait can end. */
export const isSettled = (phase: Phase): boolean => phase !== "starting" && phase !== "stopping"

/** A fresh entry for `component` (in `phase` when given, else its initial one), nothing running. */
export const makeManaged = (id: string, component: ComponentConfig, phase?: Phase): Effect.Effect<Managed> =>
  Effect.gen(function*() {
    const initial = initialState(component)
    return {
      id,
      config: component,
      state: yield* SubscriptionRef.make(phase === undefined ? initial : { ...initial, phase }),
      lifecycle: yield* Ref.make(Option.none<Fiber.RuntimeFiber<void>>()),
      child: yield* Ref.make(Option.none<ChildHandle>()),
      commands: yield* Effect.makeSemaphore(1),
      retired: yield* Ref.make(false),
      commandsIssued: yield* Ref.make(0)
    }
  })
