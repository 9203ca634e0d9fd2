/**
 * Supervisor: owns the lifecycle of supervised (`http_local_json`) components — launch, readiness,
 * `middleware-init`, health, restarts — and publishes every phase change as a typed event.
 */
import { Context, Schema } from "effect"
import type { Effect, Stream } from "effect"
import { type ComponentRoute, type ComponentView, Phase } from "./Component.js"

/** One phase change, with the reason; the lifecycle trace is a stream of these. */
export const LifecycleEvent = Schema.Struct({
  at: Schema.String,
  component: Schema.String,
  from: Phase,
  to: Phase,
  reason: Schema.String,
  pid: Schema.NullOr(Schema.Number),
  exit: Schema.optional(Schema.Struct({ code: Schema.NullOr(Schema.Number), signal: Schema.NullOr(Schema.String) }))
})
/** One phase change. */
export type LifecycleEvent = typeof LifecycleEvent.Type

/** No component has that id. */
export class UnknownComponent extends Schema.TaggedError<UnknownComponent>()("UnknownComponent", {
  component: Schema.String
}) {
  override get message(): string {
    return `no component named ${this.component}`
  }
}

/** The supervisor of the host's components. */
export interface SupervisorShape {
  readonly list: Effect.Effect<ReadonlyArray<ComponentView>>
  readonly get: (id: string) => Effect.Effect<ComponentView, UnknownComponent>
  /** Starts a stopped, configured or failed component (an operator start resets its restart budget). */
  readonly start: (id: string) => Effect.Effect<ComponentView, UnknownComponent>
  /** Stops a component and waits until its process group is gone. */
  readonly stop: (id: string) => Effect.Effect<ComponentView, UnknownComponent>
  readonly restart: (id: string) => Effect.Effect<ComponentView, UnknownComponent>
  /** Starts every enabled component, concurrently, and waits until each is ready or failed. */
  readonly startAll: Effect.Effect<void>
  /** For executors: the phase and endpoint of a component now. */
  readonly route: (id: string) => Effect.Effect<ComponentRoute, UnknownComponent>
  /** An invocation of the component timed out: counts toward `degraded` like a failed health check. */
  readonly invocationTimedOut: (id: string) => Effect.Effect<void>
  /** Lifecycle events from now on. */
  readonly events: Stream.Stream<LifecycleEvent>
}

/** The supervisor of the current host. */
export class Supervisor extends Context.Tag("corral/Supervisor")<Supervisor, SupervisorShape>() {}
