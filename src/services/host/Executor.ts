/**
 * Executors: one interface over the four kinds (`in_process`, `command_stdio`, `local_http_json`,
 * `http_local_json`). Every invocation takes a `WorkflowEnvelope` and must return a valid
 * `MiddlewareDecision`; anything else is an `ExecutorError`, never a silent pass.
 */
import { Context, Data, Schema } from "effect"
import type { Effect } from "effect"
import { Phase } from "./Component.js"
import type { MiddlewareDecision, WorkflowEnvelope } from "./MiddlewareContract.js"

/** Why an invocation produced no decision. */
export const ExecutorFailureReason = Schema.Literal(
  "NotReady", // http_local_json: the component is not ready or degraded (the phase is carried)
  "Busy", // all of the component's concurrency permits are held
  "Timeout", // no answer within request_timeout_ms
  "TooLarge", // the answer exceeded max_response_bytes
  "InvalidDecision", // the answer was not a valid MiddlewareDecision
  "Unreachable", // connection refused or reset
  "Status", // a non-2xx HTTP status
  "Crashed", // command_stdio: the process exited non-zero or by a signal
  "Failed" // in_process: the function failed or died
)

/**
 * An invocation that produced no decision, with the component and the reason; `status` is the HTTP
 * status the module answered, when it answered one (a `Status` failure: 401 means it refused the token).
 */
export class ExecutorError extends Schema.TaggedError<ExecutorError>()("ExecutorError", {
  component: Schema.String,
  reason: ExecutorFailureReason,
  phase: Schema.optional(Phase),
  status: Schema.optional(Schema.Number),
  message: Schema.String
}) {}

/**
 * The hook's `deadline_ms` ran out while a step ran: the step was ended (its socket destroyed), and the
 * hook runner reports the hook's deadline, not the component's own limit.
 */
export class HookDeadlinePassed extends Data.TaggedError("HookDeadlinePassed") {}

/** Invokes one component. */
export interface Executor {
  readonly component: string
  readonly invoke: (envelope: WorkflowEnvelope) => Effect.Effect<MiddlewareDecision, ExecutorError>
  /**
   * `invoke`, also ended `withinMs` from now (the rest of the hook's deadline) by the timer the call has
   * anyway, failing `HookDeadlinePassed`: no timeout fiber around it. The HTTP kinds offer it; the hook
   * runner wraps the others' `invoke` in a timeout. `undefined` means no hook deadline.
   */
  readonly invokeWithin?: (
    envelope: WorkflowEnvelope,
    withinMs: number | undefined
  ) => Effect.Effect<MiddlewareDecision, ExecutorError | HookDeadlinePassed>
}

/** A function an `in_process` component runs. */
export type InProcessFunction = (envelope: WorkflowEnvelope) => Effect.Effect<unknown, unknown>

/** The executors of the host's enabled components, by component id. */
export interface ExecutorsShape {
  readonly get: (componentId: string) => Executor | undefined
}

/** The executors of the current host. */
export class Executors extends Context.Tag("corral/Executors")<Executors, ExecutorsShape>() {}

/** The functions `in_process` components may name, by name (none unless a program registers some). */
export class InProcessFunctions extends Context.Tag("corral/InProcessFunctions")<
  InProcessFunctions,
  ReadonlyMap<string, InProcessFunction>
>() {}
