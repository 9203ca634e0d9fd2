/**
 * Supervisor: owns the lifecycle of supervised (`http_local_json`) components — launch, readiness,
 * `middleware-init`, health, restarts — and publishes every phase change as a typed event.
 */
import { Context, Schema } from "effect"
import type { Effect, Scope, Stream } from "effect"
import type { ComponentRoute, ComponentView } from "./Component.js"
import type { HostConfig } from "./HostConfig.js"
import type { LifecycleEvent } from "./Traces.js"

/** No component has that id. */
export class UnknownComponent extends Schema.TaggedError<UnknownComponent>()("UnknownComponent", {
  component: Schema.String
}) {
  override get message(): string {
    return `no component named ${this.component}`
  }
}

/** Why a run of a component ended in `failed` or in a restart. */
export const ComponentFailureReason = Schema.Literal(
  /** Not ready within `startup_timeout_ms`. */
  "NotReady",
  /** The process exited before it was ready. */
  "ExitedEarly",
  /** `middleware-init` could not be sent or was not answered. */
  "InitFailed",
  /** The module report failed validation. */
  "BadReport",
  /** The report names contract or API versions this host does not speak. */
  "IncompatibleContract",
  /** The process crashed and the restart budget is spent (or the policy is `never`). */
  "BudgetSpent",
  /** The process could not be started (spawn error, no free port). */
  "LaunchFailed"
)
/** Why a run of a component failed. */
export type ComponentFailureReason = typeof ComponentFailureReason.Type

/** A component failure; its `message` is what `last_error` and the lifecycle trace show. */
export class ComponentFailure extends Schema.TaggedError<ComponentFailure>()("ComponentFailure", {
  component: Schema.String,
  reason: ComponentFailureReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The component cannot make that transition (it is not supervised, or it is disabled). */
export class ImpossibleTransition extends Schema.TaggedError<ImpossibleTransition>()("ImpossibleTransition", {
  component: Schema.String,
  action: Schema.Literal("start", "stop", "restart"),
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot ${this.action} ${this.component}: ${this.reason}`
  }
}

/** The phase a command aims at: `ready` for start and restart, `stopped` for stop. */
export type TargetPhase = "ready" | "stopped"

/** What `reconcile` did with each component id. */
export interface ReconcileOutcome {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly restarted: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
}

/** The supervisor of the host's components. */
export interface SupervisorShape {
  readonly list: Effect.Effect<ReadonlyArray<ComponentView>>
  readonly get: (id: string) => Effect.Effect<ComponentView, UnknownComponent>
  /**
   * Starts a stopped, configured or failed component (an operator start resets its restart budget);
   * returns once the start is under way (phase `starting`), not when it is ready: see `settled`.
   */
  readonly start: (id: string) => Effect.Effect<ComponentView, UnknownComponent | ImpossibleTransition>
  /**
   * Stops a component and waits until its process group is gone. Once begun it ends in `stopped` even if
   * the caller is interrupted (bounded by `stop_timeout_ms` and the KILL wait). A component not started
   * yet (waiting in a start wave for its `depends_on`) becomes `stopped`, and the wave leaves it so.
   */
  readonly stop: (id: string) => Effect.Effect<ComponentView, UnknownComponent | ImpossibleTransition>
  /** Stops then starts; returns once the new start is under way. */
  readonly restart: (id: string) => Effect.Effect<ComponentView, UnknownComponent | ImpossibleTransition>
  /**
   * Waits (at most `timeoutMs`) until the component's phase settles (ready, degraded, failed, stopped or
   * configured, with no restart pending) and returns its view then; on timeout, the view as it is.
   */
  readonly settled: (id: string, timeoutMs: number) => Effect.Effect<ComponentView, UnknownComponent>
  /**
   * Makes the running set match `config`: starts added components (in `depends_on` order), stops removed
   * ones, restarts those whose config changed, leaves the rest alone (same pid).
   */
  readonly reconcile: (config: HostConfig) => Effect.Effect<ReconcileOutcome>
  /** Starts every enabled component, concurrently, and waits until each is ready or failed. */
  readonly startAll: Effect.Effect<void>
  /** For executors: the phase and endpoint of a component now. */
  readonly route: (id: string) => Effect.Effect<ComponentRoute, UnknownComponent>
  /** An invocation of the component timed out: counts toward `degraded` like a failed health check. */
  readonly invocationTimedOut: (id: string) => Effect.Effect<void>
  /** Lifecycle events from the moment the stream is run. */
  readonly events: Stream.Stream<LifecycleEvent>
  /** Subscribes now (so nothing published after this call is missed) for the life of the scope. */
  readonly subscribe: Effect.Effect<Stream.Stream<LifecycleEvent>, never, Scope.Scope>
}

/** The supervisor of the current host. */
export class Supervisor extends Context.Tag("corral/Supervisor")<Supervisor, SupervisorShape>() {}
