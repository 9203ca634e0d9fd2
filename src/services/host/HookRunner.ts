/**
 * HookRunner: runs a hook's chain of components on one envelope — `allow` continues, `modify` hands
 * the next step a new payload, `deny` stops — and answers the hook's decision with what each step did.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import { ExecutorFailureReason } from "./Executor.js"
import { FailurePolicy, type HookConfig } from "./HostConfig.js"
import { MiddlewareDecision, type WorkflowEnvelope } from "./MiddlewareContract.js"

/** What became of one step: its decision, `failed`, or `skipped` (not run after the chain stopped). */
export const StepOutcome = Schema.Literal("allow", "deny", "modify", "failed", "skipped")
/** What became of one step. */
export type StepOutcome = typeof StepOutcome.Type

/** Why a step failed: an executor's reason, or `NoExecutor` when the hook names an unknown component. */
export const StepFailureReason = Schema.Union(ExecutorFailureReason, Schema.Literal("NoExecutor"))
/** Why a step failed. */
export type StepFailureReason = typeof StepFailureReason.Type

/** One step of a hook run, as `POST /v1/hooks/{hook}/invoke` and the invocation trace show it. */
export const HookStep = Schema.Struct({
  component: Schema.String,
  outcome: StepOutcome,
  duration_ms: Schema.Number,
  error: Schema.optional(Schema.Struct({ reason: StepFailureReason, message: Schema.String }))
})
/** One step of a hook run. */
export type HookStep = typeof HookStep.Type

/** The body of `POST /v1/hooks/{hook}/invoke`: the hook's decision and what each step did. */
export const HookResult = Schema.Struct({
  decision: MiddlewareDecision,
  steps: Schema.Array(HookStep)
})
/** The result of a hook run. */
export type HookResult = typeof HookResult.Type

/** A hook to run: its name, its ordered component ids and what a failed step does. */
export interface HookSpec {
  readonly name: string
  readonly components: ReadonlyArray<string>
  readonly failurePolicy: typeof FailurePolicy.Type
}

/** Reads a hook's config (a bare list is `fail_closed`) as a `HookSpec`. */
export const hookSpec = (name: string, config: typeof HookConfig.Type): HookSpec =>
  "components" in config
    ? { name, components: config.components, failurePolicy: config.failure_policy }
    : { name, components: config, failurePolicy: "fail_closed" }

/** No hook has that name. */
export class UnknownHook extends Schema.TaggedError<UnknownHook>()("UnknownHook", {
  hook: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `no hook named ${this.hook} (known: ${this.known.join(", ") || "none"})`
  }
}

/** The host's hooks. */
export interface HookRunnerShape {
  /** The configured hook names now, in config order (a reload may change them). */
  readonly names: Effect.Effect<ReadonlyArray<string>>
  /** Runs hook `name` on `envelope`; never fails but for an unknown hook (a failed step is an outcome). */
  readonly invoke: (name: string, envelope: WorkflowEnvelope) => Effect.Effect<HookResult, UnknownHook>
}

/** The hooks of the current host. */
export class HookRunner extends Context.Tag("corral/HookRunner")<HookRunner, HookRunnerShape>() {}
