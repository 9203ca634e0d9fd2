/**
 * HookRunner: runs a hook's chain of components on one envelope. `allow` continues, `modify` hands
 * the next step a new payload, `deny` stops; a failed step denies (`fail_closed`) or is recorded and
 * skipped over (`fail_open`). The envelope's `deadline_ms` bounds the whole chain.
 */
import { Cause, Duration, Effect, Either, Layer, Option } from "effect"
import { type Executor, type ExecutorError, Executors, HookDeadlinePassed } from "../../services/host/Executor.js"
import { CurrentConfig } from "../../services/host/EffectiveConfig.js"
import {
  type HookResult,
  HookRunner,
  type HookSpec,
  hookSpec,
  type HookStep,
  type StepFailureReason,
  UnknownHook
} from "../../services/host/HookRunner.js"
import type { MiddlewareDecision, WorkflowEnvelope } from "../../services/host/MiddlewareContract.js"
import { type InvocationRecord, TraceLog } from "../../services/host/Traces.js"

interface StepFailure {
  readonly reason: StepFailureReason
  readonly message: string
}

type Annotations = Readonly<Record<string, unknown>>

const elapsedMs = (fromNanos: bigint, toNanos: bigint): number => Math.round(Number(toNanos - fromNanos) / 1_000) / 1_000

const withAnnotations = <D extends MiddlewareDecision>(decision: D, annotations: Annotations): D =>
  Object.keys(annotations).length === 0 ? decision : { ...decision, annotations }

const stepDecision = (decision: MiddlewareDecision): Either.Either<MiddlewareDecision, StepFailure> => Either.right(decision)

const stepFailure = (failure: StepFailure): Either.Either<MiddlewareDecision, StepFailure> =>
  Either.left({ reason: failure.reason, message: failure.message })

/**
 * Runs one step, bounded by what is left of the hook's deadline, and answers its decision or the
 * `StepFailure` it ended in (an interrupt from outside still interrupts). An executor that can end its
 * own call at a deadline (`invokeWithin`) is given the rest of it; the others are wrapped in a timeout.
 */
const stepOutcome = (
  component: string,
  executor: Executor | undefined,
  envelope: WorkflowEnvelope,
  remainingNanos: bigint | undefined
): Effect.Effect<Either.Either<MiddlewareDecision, StepFailure>> => {
  if (executor === undefined) {
    return Effect.succeed(stepFailure({ reason: "NoExecutor", message: `no executor for component ${component} (is it configured and enabled?)` }))
  }
  if (remainingNanos !== undefined && remainingNanos <= 0n) {
    return Effect.succeed(stepFailure({ reason: "Timeout", message: `not started: the hook's deadline_ms ${envelope.deadline_ms} had passed` }))
  }
  const deadlinePassed = (): StepFailure => ({
    reason: "Timeout",
    message: `component ${component}: interrupted: the hook's deadline_ms ${envelope.deadline_ms} passed`
  })
  const invoked: Effect.Effect<MiddlewareDecision, ExecutorError | HookDeadlinePassed | StepFailure> = executor.invokeWithin !== undefined
    ? executor.invokeWithin(envelope, remainingNanos === undefined ? undefined : Number(remainingNanos) / 1e6)
    : remainingNanos === undefined
    ? executor.invoke(envelope)
    : Effect.timeoutFail(executor.invoke(envelope), { duration: Duration.nanos(remainingNanos), onTimeout: deadlinePassed })
  // One continuation for success, failure and defect (rather than mapError, catchAllDefect and either).
  return Effect.matchCauseEffect(invoked, {
    onSuccess: (decision) => Effect.succeed(stepDecision(decision)),
    onFailure: (cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        return Effect.succeed(stepFailure(
          error instanceof HookDeadlinePassed ? deadlinePassed() : error
        ))
      }
      const defect = Cause.dieOption(cause)
      // Neither a failure nor a defect: an interrupt from outside, which goes on as one.
      if (Option.isNone(defect)) return Effect.failCause(Cause.stripFailures(cause))
      return Effect.logError("executor defect").pipe(
        Effect.annotateLogs({ component, hook: envelope.hook, envelope_id: envelope.id, defect: String(defect.value) }),
        Effect.as(stepFailure({ reason: "Failed", message: `component ${component}: executor defect: ${String(defect.value)}` }))
      )
    }
  })
}

/**
 * Runs `hook` on `envelope` with the executors `executors` finds, then hands `trace` one
 * `InvocationRecord`. Never fails: every failure is a step outcome and, under `fail_closed`, a deny.
 * The chain is a loop of continuations in the caller's fiber (no generator, no fork); the clock is read
 * once as a service and then synchronously.
 */
export const runHook = (
  hook: HookSpec,
  envelope: WorkflowEnvelope,
  executors: (componentId: string) => Executor | undefined,
  trace: (record: InvocationRecord) => Effect.Effect<void>
): Effect.Effect<HookResult> =>
  Effect.clockWith((clock) => {
    const startedAt = clock.unsafeCurrentTimeMillis()
    const startedNanos = clock.unsafeCurrentTimeNanos()
    const deadlineNanos = envelope.deadline_ms === undefined
      ? undefined
      : startedNanos + BigInt(envelope.deadline_ms) * 1_000_000n

    const steps: Array<HookStep> = []
    let payload: unknown = envelope.payload
    let modified = false
    let annotations: Annotations = {}
    let stopped: MiddlewareDecision | undefined

    const record = (component: string, stepStarted: bigint, outcome: Either.Either<MiddlewareDecision, StepFailure>): void => {
      const duration_ms = elapsedMs(stepStarted, clock.unsafeCurrentTimeNanos())
      if (Either.isLeft(outcome)) {
        const error = outcome.left
        steps.push({ component, outcome: "failed", duration_ms, error: { reason: error.reason, message: error.message } })
        if (hook.failurePolicy === "fail_closed") {
          stopped = withAnnotations({ decision: "deny", reason: `${component} failed: ${error.reason}: ${error.message}` }, annotations)
        }
        return
      }
      const decision = outcome.right
      steps.push({ component, outcome: decision.decision, duration_ms })
      annotations = decision.annotations === undefined ? annotations : { ...annotations, ...decision.annotations }
      switch (decision.decision) {
        case "deny":
          stopped = withAnnotations(decision, annotations)
          break
        case "modify":
          payload = decision.payload
          modified = true
          break
        case "allow":
          break
      }
    }

    const finish = (): Effect.Effect<HookResult> => {
      const decision: MiddlewareDecision = stopped ??
        (modified ? withAnnotations({ decision: "modify", payload }, annotations) : withAnnotations({ decision: "allow" }, annotations))
      const result: HookResult = { decision, steps }
      return Effect.as(
        trace({
          at: new Date(startedAt).toISOString(),
          hook: hook.name,
          envelope_id: envelope.id,
          subject: envelope.subject,
          decision,
          failure_policy: hook.failurePolicy,
          steps,
          duration_ms: elapsedMs(startedNanos, clock.unsafeCurrentTimeNanos())
        }),
        result
      )
    }

    const runFrom = (index: number): Effect.Effect<HookResult> => {
      for (; index < hook.components.length; index++) {
        const component = hook.components[index]
        if (component === undefined) continue
        if (stopped !== undefined) {
          steps.push({ component, outcome: "skipped", duration_ms: 0 })
          continue
        }
        const stepStarted = clock.unsafeCurrentTimeNanos()
        const stepEnvelope = modified ? { ...envelope, payload } : envelope
        const remaining = deadlineNanos === undefined ? undefined : deadlineNanos - stepStarted
        const next = index + 1
        return Effect.flatMap(stepOutcome(component, executors(component), stepEnvelope, remaining), (outcome) => {
          record(component, stepStarted, outcome)
          return runFrom(next)
        })
      }
      return finish()
    }

    return runFrom(0)
  })

/**
 * The host's hooks from the current config, run with the host's executors, traced to
 * `trace/invocation.jsonl`. The hook map is the current config's: a reload replaces it in one step, so an
 * invocation runs the whole old chain or the whole new one, never a mix.
 */
export const HookRunnerLive: Layer.Layer<HookRunner, never, CurrentConfig | Executors | TraceLog> = Layer.effect(
  HookRunner,
  Effect.gen(function*() {
    const current = yield* CurrentConfig
    const executors = yield* Executors
    const traces = yield* TraceLog
    return {
      names: Effect.map(current.get, ({ config }) => Object.keys(config.hooks)),
      invoke: (name, envelope) =>
        Effect.flatMap(current.get, ({ config }) => {
          // Own keys only: a hook named "constructor" must not find Object.prototype's.
          const hook = Object.hasOwn(config.hooks, name) ? config.hooks[name] : undefined
          return hook === undefined
            ? Effect.fail(new UnknownHook({ hook: name, known: Object.keys(config.hooks) }))
            : runHook(hookSpec(name, hook), envelope, executors.get, traces.invocation)
        })
    }
  })
)
