/**
 * What every executor kind shares: the component's call limits, a concurrency permit taken without
 * waiting (`Busy`), a deadline with a backstop, decision decoding, and the mapping of client and
 * launcher errors to `ExecutorError` reasons.
 */
import { Effect, Either, Inspectable, ParseResult, Predicate, Schema } from "effect"
import type { Phase } from "../../../services/host/Component.js"
import { ExecutorError, type Executor } from "../../../services/host/Executor.js"
import { type ComponentConfig, defaultHttpConfig } from "../../../services/host/HostConfig.js"
import { decodeDecisionFast } from "../../../services/host/ContractDecoders.js"
import { MiddlewareDecision, type WorkflowEnvelope } from "../../../services/host/MiddlewareContract.js"
import { type CallLimits, type ModuleCallError } from "../../../services/host/ModuleClient.js"
import { type LaunchError } from "../../../services/host/ProcessLauncher.js"
import { parseIssueLines } from "../../../services/system/ParseIssues.js"

/** A component as the executors see it: its config with its id filled in. */
export type ExecutorComponent = ComponentConfig & { readonly id: string }



/**
 * Extra time an outer deadline leaves the client or launcher to report its own timeout (and clean up
 * its socket or process group) before the executor interrupts it.
 */
export const backstopMs = 1_000

/** Characters of a parse error or an output quoted in an error message. */
export const summaryLength = 400

export const truncate = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > summaryLength ? `${flat.slice(0, summaryLength)}…` : flat
}

export const describe = (value: unknown): string =>
  Predicate.hasProperty(value, "message") && typeof value.message === "string"
    ? value.message
    : Inspectable.toStringUnknown(value)

export const executorError = (
  component: string,
  reason: ExecutorError["reason"],
  message: string,
  phase?: Phase
): ExecutorError =>
  new ExecutorError({ component, reason, message: `component ${component}: ${message}`, ...(phase === undefined ? {} : { phase }) })

export const limitsOf = (component: ExecutorComponent): CallLimits => {
  const http = component.http ?? defaultHttpConfig
  return { timeoutMs: http.request_timeout_ms, maxResponseBytes: http.max_response_bytes }
}

export const kindOf = (value: unknown): string =>
  Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`

/** The parse error in a line: one issue per JSON path (`payload: is missing`). */
export const summarizeInvalid = (answer: unknown, error: ParseResult.ParseError): string => {
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    return `expected a JSON object like {"decision":"allow"}, got ${kindOf(answer)}`
  }
  return truncate(parseIssueLines(error).join("; "))
}

// Built once for the shape, not per answer: an invocation only runs the prebuilt decoder.
const decodeDecisionEither = Schema.decodeUnknownEither(MiddlewareDecision)

/**
 * Decodes an answer as a `MiddlewareDecision`; an invalid one fails with `InvalidDecision` and what is
 * wrong. The common answers take the hand-written decoder; the Schema decides the rest and words the error.
 */
export const decodeDecision = (component: string, answer: unknown): Either.Either<MiddlewareDecision, ExecutorError> => {
  const fast = decodeDecisionFast(answer)
  if (fast !== undefined) return Either.right(fast)
  return Either.mapLeft(
    decodeDecisionEither(answer),
    (error) => executorError(component, "InvalidDecision", `invalid decision: ${summarizeInvalid(answer, error)}`)
  )
}

/**
 * A component's concurrency permits, taken without waiting: a plain counter, so the hook path takes and
 * returns one without an Effect, and every path of the component shares the same bound.
 */
export class ConcurrencyPermits {
  private held = 0
  constructor(readonly max: number) {}
  /** Takes a permit when one is free. */
  tryTake(): boolean {
    if (this.held >= this.max) return false
    this.held += 1
    return true
  }
  /** Whether a permit is free now (without taking it). */
  get available(): boolean {
    return this.held < this.max
  }
  /** Returns a permit taken with `tryTake`. */
  release(): void {
    this.held -= 1
  }
}

/** The `Busy` failure of a component whose permits are all held. */
export const busyError = (component: string, maxConcurrency: number): ExecutorError =>
  executorError(component, "Busy", `all ${maxConcurrency} concurrency permits are held; try again later`)

/**
 * Wraps an invocation in a non-waiting permit of `permits` (`Busy` when all are held) and a deadline of
 * `deadlineMs` that interrupts it (`Timeout`, reported as `timeoutMs`, the configured limit).
 * `deadlineMs: "enforced"` adds no deadline: the attempt enforces its own (the module client's timer
 * destroys the call), and a second one would cost two fibers and a timer per invocation.
 */
export const boundedBy = (
  component: string,
  permits: ConcurrencyPermits,
  timeoutMs: number,
  deadlineMs: number | "enforced",
  attempt: (envelope: WorkflowEnvelope) => Effect.Effect<MiddlewareDecision, ExecutorError>
): Executor => {
  const timed = deadlineMs === "enforced" ? attempt : (envelope: WorkflowEnvelope) =>
    attempt(envelope).pipe(
      Effect.timeoutFail({
        duration: deadlineMs,
        onTimeout: () => executorError(component, "Timeout", `no decision within ${timeoutMs} ms`)
      })
    )
  const release = Effect.sync(() => permits.release())
  return {
    component,
    // Taken and given back uninterruptibly around an interruptible attempt: an interrupt never leaks a permit.
    invoke: (envelope) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() =>
          permits.tryTake()
            ? Effect.ensuring(restore(timed(envelope)), release)
            : Effect.fail(busyError(component, permits.max))
        )
      )
  }
}

/** `boundedBy` with permits of its own (`maxConcurrency`). */
export const bounded = (
  component: string,
  maxConcurrency: number,
  timeoutMs: number,
  deadlineMs: number | "enforced",
  attempt: (envelope: WorkflowEnvelope) => Effect.Effect<MiddlewareDecision, ExecutorError>
): Effect.Effect<Executor> =>
  Effect.sync(() => boundedBy(component, new ConcurrencyPermits(maxConcurrency), timeoutMs, deadlineMs, attempt))

export const fromCallError = (component: string, error: ModuleCallError): ExecutorError => {
  switch (error.reason) {
    case "BadJson":
      return executorError(component, "InvalidDecision", error.message)
    case "Status":
    case "Timeout":
    case "TooLarge":
    case "Unreachable":
      return executorError(component, error.reason, error.message)
  }
}

export const fromLaunchError = (component: string, error: LaunchError): ExecutorError => {
  switch (error.reason) {
    case "Spawn":
      return executorError(component, "Crashed", `could not start: ${error.message}`)
    case "Timeout":
      return executorError(component, "Timeout", error.message)
    case "OutputTooLarge":
      return executorError(component, "TooLarge", error.message)
  }
}
