/**
 * How a client command (`corral events`, `corral logs -f`, `corral status`, …; every command but `up`)
 * ends early: at once and quietly, with the exit code a shell shows for a death by that signal.
 * - Ctrl-C, SIGTERM, SIGQUIT: 128 + the signal's number (130, 143, 131), as `tail -f` or `kubectl logs -f`.
 *   A client has nothing to drain, so the host's "stopping (a second signal …)" line (`ProcessMain`)
 *   would only be noise: while these listeners are installed, `ProcessMain` leaves the signals to them.
 * - Its reader went away (`corral events | head -1`: EPIPE on stdout): 141, as SIGPIPE would end it,
 *   instead of Node's unhandled-error stack dump.
 */
import * as Os from "node:os"
import { Deferred, Effect } from "effect"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { ReportedFailure, StoppedBySignal } from "./Terminal.js"

/** The stop signals a client command answers. */
const clientStopSignals = ["SIGINT", "SIGTERM", "SIGQUIT"] as const

/** 128 + the signal's number, what a shell reports for a process that signal killed. */
const exitCodeFor = (signal: NodeJS.Signals): number => 128 + Os.constants.signals[signal]

/**
 * Runs `command` until it ends, a stop signal arrives or stdout's reader goes away; in the last two
 * cases it is interrupted (its finalizers run) and the result is a `StoppedBySignal`. A second signal
 * while it winds down exits the process at once. Another write error on stdout is one line and exit 1.
 */
export const endEarlyQuietly = <A, E, R>(command: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoppedBySignal | ReportedFailure, R> =>
  Effect.scoped(Effect.gen(function*() {
    const stopped = yield* Deferred.make<never, StoppedBySignal | ReportedFailure>()
    const stop = (signal: NodeJS.Signals) => Deferred.unsafeDone(stopped, Effect.fail(new StoppedBySignal({ signal, exitCode: exitCodeFor(signal) })))
    let signalsSeen = 0
    const onSignal = (signal: NodeJS.Signals) => {
      signalsSeen += 1
      // A command whose interruption hangs must not leave only `kill -9`.
      if (signalsSeen > 1) process.exit(exitCodeFor(signal))
      stop(signal)
    }
    let stdoutFailed = false
    const onStdoutError = (error: unknown) => {
      if (errorCode(error) === "EPIPE") return stop("SIGPIPE")
      // Every later write fails the same way: one line is enough.
      if (stdoutFailed) return
      stdoutFailed = true
      process.stderr.write(`corral: cannot write to stdout: ${errorText(error)}\n`)
      Deferred.unsafeDone(stopped, Effect.fail(new ReportedFailure()))
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        for (const signal of clientStopSignals) process.on(signal, onSignal)
        process.stdout.on("error", onStdoutError)
      }),
      () =>
        Effect.sync(() => {
          for (const signal of clientStopSignals) process.removeListener(signal, onSignal)
          process.stdout.removeListener("error", onStdoutError)
        })
    )
    return yield* Effect.raceFirst(command, Deferred.await(stopped))
  }))
