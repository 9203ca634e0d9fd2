/**
 * HookRunner: runs a hook's chain of components on one envelope. `allow` continues, `modify` hands
 * the next step a new payload, `deny` stops; a failed step denies (`fail_closed`) or is recorded and
 * skipped over (`fail_open`). The envelope's `deadline_ms` bounds the whole chain.
 */
import { Clock, Duration, Effect, Layer } from "effect"
import { type Executor, Executors } from "../../services/host/Executor.js"
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

/** Invokes one step, bounded by what is left of the hook's deadline; every way it can go wrong is a `StepFailure`. */
const invokeStep = (
  component: string,
  executor: Executor | undefined,
  envelope: WorkflowEnvelope,
  remainingNanos: bigint | undefined
): Effect.Effect<MiddlewareDecision, StepFailure> => {
  if (executor === undefined) {
    return Effect.fail({ reason: "NoExecutor", message: `no executor for component ${component} (is it configured and enabled?)` })
  }
  if (remainingNanos !== undefined && remainingNanos <= 0n) {
    return Effect.fail({ reason: "Timeout", message: `not started: the hook's deadline_ms ${envelope.deadline_ms} had passed` })
  }
  const invoked = executor.invoke(envelope).pipe(
    Effect.mapError((error): StepFailure => ({ reason: error.reason, message: error.message })),
    Effect.catchAllDefect((defect) =>
      Effect.logError("executor defect").pipe(
        Effect.annotateLogs({ component, hook: envelope.hook, envelope_id: envelope.id, defect: String(defect) }),
        Effect.zipRight(Effect.fail<StepFailure>({ reason: "Failed", message: `component ${component}: executor defect: ${String(defect)}` }))
      ))
  )
  return remainingNanos === undefined ? invoked : invoked.pipe(
    Effect.timeoutFail({
      duration: Duration.nanos(remainingNanos),
      onTimeout: (): StepFailure => ({
        reason: "Timeout",
        message: `component ${component}: interrupted: the hook's deadline_ms ${envelope.deadline_ms} passed`
      })
    })
  )
}

/**
 * Runs `hook` on `envelope` with the executors `executors` finds, then hands `trace` one
 * `InvocationRecord`. Never fails: every failure is a step outcome and, under `fail_closed`, a deny.
 */
export const runHook = (
  hook: HookSpec,
  envelope: WorkflowEnvelope,
  executors: (componentId: string) => Executor | undefined,
  trace: (record: InvocationRecord) => Effect.Effect<void>
): Effect.Effect<HookResult> =>
  Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    const startedNanos = yield* Clock.currentTimeNanos
    const deadlineNanos = envelope.deadline_ms === undefined
      ? undefined
      : startedNanos + BigInt(envelope.deadline_ms) * 1_000_000n

    const steps: Array<HookStep> = []
    let payload: unknown = envelope.payload
    let modified = false
    let annotations: Annotations = {}
    let stopped: MiddlewareDecision | undefined

    for (const component of hook.components) {
      if (stopped !== undefined) {
        steps.push({ component, outcome: "skipped", duration_ms: 0 })
        continue
      }
      const stepStarted = yield* Clock.currentTimeNanos
      const stepEnvelope = modified ? { ...envelope, payload } : envelope
      const outcome = yield* Effect.either(
        invokeStep(component, executors(component), stepEnvelope, deadlineNanos === undefined ? undefined : deadlineNanos - stepStarted)
      )
      const duration_ms = elapsedMs(stepStarted, yield* Clock.currentTimeNanos)

      if (outcome._tag === "Left") {
        const error = outcome.left
        steps.push({ component, outcome: "failed", duration_ms, error: { reason: error.reason, message: error.message } })
        if (hook.failurePolicy === "fail_closed") {
          stopped = withAnnotations({ decision: "deny", reason: `${component} failed: ${error.reason}: ${error.message}` }, annotations)
        }
        continue
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

    const decision: MiddlewareDecision = stopped ??
      (modified ? withAnnotations({ decision: "modify", payload }, annotations) : withAnnotations({ decision: "allow" }, annotations))
    const result: HookResult = { decision, steps }
    yield* trace({
      at: new Date(startedAt).toISOString(),
      hook: hook.name,
      envelope_id: envelope.id,
      subject: envelope.subject,
      decision,
      failure_policy: hook.failurePolicy,
      steps,
      duration_ms: elapsedMs(startedNanos, yield* Clock.currentTimeNanos)
    })
    return result
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
