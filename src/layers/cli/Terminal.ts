/**
 * What the CLI says to the person at the terminal: one line per expected failure on stderr (then a
 * `ReportedFailure`, so the exit code is 1 without a second report; a `UsageFailure` makes it 2; a
 * `StoppedBySignal` 128 + the signal's number, silently),
 * JSON lines on stdout.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, Chunk, Effect, Option, Schema } from "effect"

/** An expected failure that has been told to the user already: the process exits 1, nothing more is printed. */
export class ReportedFailure extends Schema.TaggedError<ReportedFailure>()("ReportedFailure", {}) {}

/** The command line itself was wrong and the user has been told in one line: the process exits 2. */
export class UsageFailure extends Schema.TaggedError<UsageFailure>()("UsageFailure", {}) {}

/**
 * A client command was ended early by a signal (or by its stdout's reader going away, as SIGPIPE): the
 * process exits with `exitCode` (128 + the signal's number), printing nothing (`ClientInterruption`).
 */
export class StoppedBySignal extends Schema.TaggedError<StoppedBySignal>()("StoppedBySignal", {
  signal: Schema.String,
  exitCode: Schema.Number
}) {}

/** Exit code of a usage error (the command line was wrong), as the shells' own builtins use it. */
export const usageExitCode = 2

/** Writes one line to stderr. */
export const stderrLine = (text: string): Effect.Effect<void> => Effect.sync(() => process.stderr.write(`${text}\n`))

/** Writes one line to stdout. */
export const stdoutLine = (text: string): Effect.Effect<void> => Effect.sync(() => process.stdout.write(`${text}\n`))

/** Writes `value` as one JSON line to stdout. */
export const stdoutJson = (value: unknown): Effect.Effect<void> => Effect.sync(() => process.stdout.write(`${JSON.stringify(value)}\n`))

/** Tells the user `text` and fails with `ReportedFailure`. */
export const reportFailure = (text: string): Effect.Effect<never, ReportedFailure> =>
  Effect.zipRight(stderrLine(text), Effect.fail(new ReportedFailure()))

/** Tells the user what is wrong with the command line, in one line, and fails with `UsageFailure`. */
export const reportUsage = (text: string): Effect.Effect<never, UsageFailure> =>
  Effect.zipRight(stderrLine(text), Effect.fail(new UsageFailure()))

// @effect/cli prints its own validation errors before failing with them (the demo server keeps that output).
const isReported = (error: unknown): boolean =>
  error instanceof ReportedFailure || error instanceof UsageFailure || error instanceof StoppedBySignal ||
  ValidationError.isValidationError(error)

/** Logs a failure nobody has reported yet (a bug, or an error the CLI forgot to explain). */
export const logUnreported = <E>(cause: Cause.Cause<E>): Effect.Effect<void> =>
  Chunk.every(Cause.failures(cause), isReported) && !Cause.isDie(cause)
    ? Effect.void
    : Effect.logError("corral failed", cause)

/** The process's exit code for a failed run: 2 for a usage error, 128 + n for a client stopped by signal n, else 1. */
export const failureExitCode = <E>(cause: Cause.Cause<E>): number => {
  const failures = Cause.failures(cause)
  if (Chunk.some(failures, (error) => error instanceof UsageFailure)) return usageExitCode
  const stopped = Chunk.findFirst(failures, (error): error is E & StoppedBySignal => error instanceof StoppedBySignal)
  return Option.match(stopped, { onNone: () => 1, onSome: (error) => error.exitCode })
}
