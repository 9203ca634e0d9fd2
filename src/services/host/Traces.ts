/**
 * The host's two trace streams, frozen wire formats: `trace/lifecycle.jsonl` (one `LifecycleEvent` per
 * phase change of a component) and `trace/invocation.jsonl` (one `InvocationRecord` per hook run).
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import { Phase } from "./Component.js"
import { HookStep } from "./HookRunner.js"
import { FailurePolicy } from "./HostConfig.js"
import { MiddlewareDecision } from "./MiddlewareContract.js"

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

/** One line of `trace/invocation.jsonl`: a whole hook run. */
export const InvocationRecord = Schema.Struct({
  at: Schema.String,
  hook: Schema.String,
  envelope_id: Schema.String,
  subject: Schema.String,
  decision: MiddlewareDecision,
  failure_policy: FailurePolicy,
  steps: Schema.Array(HookStep),
  duration_ms: Schema.Number
})
/** One line of the invocation trace. */
export type InvocationRecord = typeof InvocationRecord.Type

/** Appenders for the two trace files. */
export interface TraceLogShape {
  readonly lifecycle: (event: LifecycleEvent) => Effect.Effect<void>
  readonly invocation: (record: InvocationRecord) => Effect.Effect<void>
}

/** The trace files of the current host. */
export class TraceLog extends Context.Tag("corral/TraceLog")<TraceLog, TraceLogShape>() {}
