/** The `in_process` executor: a registered TypeScript function, bounded like every other kind. */
import { Effect } from "effect"
import { type Executor, type InProcessFunction } from "../../../services/host/Executor.js"
import { bounded, decodeDecision, describe, executorError } from "./ExecutorLimits.js"

/** Options of an `in_process` executor. */
export interface InProcessOptions {
  readonly timeoutMs: number
  readonly maxConcurrency: number
}

/** An `in_process` executor: runs `fn`; its failure or defect is `Failed`, past `timeoutMs` it is interrupted (`Timeout`). */
export const makeInProcessExecutor = (
  componentId: string,
  fn: InProcessFunction,
  options: InProcessOptions
): Effect.Effect<Executor> =>
  bounded(componentId, options.maxConcurrency, options.timeoutMs, options.timeoutMs, (envelope) =>
    Effect.suspend(() => fn(envelope)).pipe(
      Effect.catchAll((error) => Effect.fail(executorError(componentId, "Failed", `the function failed: ${describe(error)}`))),
      Effect.catchAllDefect((defect) => Effect.fail(executorError(componentId, "Failed", `the function died: ${describe(defect)}`))),
      Effect.flatMap((answer) => decodeDecision(componentId, answer))
    ))
