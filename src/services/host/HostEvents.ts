/**
 * HostEvents: everything an operator watches live, numbered in order: lifecycle phase changes, health
 * results, hook invocations, broker launches and exits, reloads. A bounded in-memory ring keeps the
 * newest, so a client that reconnects with `Last-Event-ID` resumes without a gap (or learns it missed some).
 */
import { Context, Schema } from "effect"
import type { Effect, Scope, Stream } from "effect"
import { HookStep } from "./HookRunner.js"
import { MiddlewareDecision } from "./MiddlewareContract.js"
import { LifecycleEvent } from "./Traces.js"

/** A component's phase changed (the same record as a `trace/lifecycle.jsonl` line). */
export const LifecycleHostEvent = Schema.TaggedStruct("lifecycle", LifecycleEvent.fields)

/** A health check of a supervised component ran. */
export const HealthHostEvent = Schema.TaggedStruct("health", {
  at: Schema.String,
  component: Schema.String,
  ok: Schema.Boolean,
  detail: Schema.String
})

/** A hook ran (the outline of a `trace/invocation.jsonl` line). */
export const InvocationHostEvent = Schema.TaggedStruct("invocation", {
  at: Schema.String,
  hook: Schema.String,
  envelope_id: Schema.String,
  subject: Schema.String,
  decision: MiddlewareDecision,
  steps: Schema.Array(HookStep),
  duration_ms: Schema.Number
})

/** The broker launched a backend, a backend exited, or a hello was refused. */
export const BrokerHostEvent = Schema.TaggedStruct("broker", {
  at: Schema.String,
  action: Schema.Literal("launched", "exited", "rejected"),
  service: Schema.String,
  version: Schema.NullOr(Schema.String),
  pid: Schema.NullOr(Schema.Number),
  detail: Schema.String
})

/** The config was reloaded (or a reload was refused: then `problems` lists why and nothing changed). */
export const ReloadHostEvent = Schema.TaggedStruct("reload", {
  at: Schema.String,
  applied: Schema.Boolean,
  added: Schema.Array(Schema.String),
  removed: Schema.Array(Schema.String),
  restarted: Schema.Array(Schema.String),
  unchanged: Schema.Array(Schema.String),
  problems: Schema.Array(Schema.String)
})

/** One event of the host. */
export const HostEvent = Schema.Union(LifecycleHostEvent, HealthHostEvent, InvocationHostEvent, BrokerHostEvent, ReloadHostEvent)
/** One event of the host. */
export type HostEvent = typeof HostEvent.Type

/** An event with its number: ids start at 1 and grow by one per event for the life of the host. */
export interface NumberedEvent {
  readonly id: number
  readonly event: HostEvent
}

/** What a subscriber gets: the events after the id it asked from that the ring still holds, then live ones. */
export interface EventSubscription {
  /** Events after `afterId` still in the ring, oldest first. */
  readonly backlog: ReadonlyArray<NumberedEvent>
  /** True when some events after `afterId` already left the ring (the client missed them). */
  readonly gap: boolean
  /** Events published after the subscription was taken, for the life of its scope. */
  readonly live: Stream.Stream<NumberedEvent>
}

/** The host's event feed. */
export interface HostEventsShape {
  /** Numbers and keeps `event`, and hands it to every subscriber; never blocks (slow subscribers drop the oldest). */
  readonly publish: (event: HostEvent) => Effect.Effect<void>
  /** Subscribes from `afterId` (undefined: only live events) for the life of the scope. */
  readonly subscribe: (afterId: number | undefined) => Effect.Effect<EventSubscription, never, Scope.Scope>
  /** The newest `limit` events of the ring, oldest first (the status page's first paint). */
  readonly recent: (limit: number) => Effect.Effect<ReadonlyArray<NumberedEvent>>
}

/** The current host's event feed. */
export class HostEvents extends Context.Tag("corral/HostEvents")<HostEvents, HostEventsShape>() {}
