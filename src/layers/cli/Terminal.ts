/**
 * What the CLI says to the person at the terminal: one line per expected failure on stderr (then a
 * `ReportedFailure`, so the exit code is 1 without a second report), JSON lines on stdout.
 */
import { ValidationError } from "@effect/cli"
import { Cause, Chunk, Effect, Schema } from "effect"

/** An expected failure that has been told to the user already: the process exits 1, nothing more is printed. */
export class ReportedFailure extends Schema.TaggedError<ReportedFailure>()("ReportedFailure", {}) {}

/** Writes one line to stderr. */
export const stderrLine = (text: string): Effect.Effect<void> => Effect.sync(() => process.stderr.write(`${text}\n`))

/** Writes `value` as one JSON line to stdout. */
export const stdoutJson = (value: unknown): Effect.Effect<void> => Effect.sync(() => process.stdout.write(`${JSON.stringify(value)}\n`))

/** Tells the user `text` and fails with `ReportedFailure`. */
export const reportFailure = (text: string): Effect.Effect<never, ReportedFailure> =>
  Effect.zipRight(stderrLine(text), Effect.fail(new ReportedFailure()))

// @effect/cli prints its own validation errors (usage, unknown option) before failing with them.
const isReported = (error: unknown): boolean => error instanceof ReportedFailure || ValidationError.isValidationError(error)

/** Logs a failure nobody has reported yet (a bug, or an error the CLI forgot to explain). */
export const logUnreported = <E>(cause: Cause.Cause<E>): Effect.Effect<void> =>
  Chunk.every(Cause.failures(cause), isReported) && !Cause.isDie(cause)
    ? Effect.void
    : Effect.logError("corral failed", cause)
