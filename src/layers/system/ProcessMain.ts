/**
 * How a Corral program runs as a process (in place of `NodeRuntime.runMain`, whose second SIGTERM
 * kills the process mid-drain and which leaves SIGUSR1 to Node's inspector):
 * - SIGTERM, SIGINT, SIGQUIT: the first interrupts the program, so its scopes drain; a second one
 *   declares `ShutdownUrgency` (grace periods end now) and makes the exit code 130; a third exits at once.
 *   A program with its own listener for the signal answers for itself (the CLI's client commands end
 *   quietly at once: `ClientInterruption`); this one then says and does nothing.
 * - SIGHUP: left to the program's own listener (`corral up` reloads its config); with none, logged and ignored
 *   (handling it at all keeps Node's default, which ends the process, from applying).
 * - SIGUSR1: logged and ignored; handling it at all keeps Node from opening its unauthenticated debugger.
 * Exit code: 0 when the program ends or is stopped by a signal, 1 on a failure (or what `failureExitCode`
 * says of it: the CLI's usage errors are 2), 130 after an urgent stop.
 */
// The module, not the package index: the CLI starts through here and the index loads all of @effect/platform.
import * as Runtime from "@effect/platform/Runtime"
import { Cause, Effect, Exit } from "effect"
import { makeShutdownUrgency, ShutdownUrgency } from "../../services/system/ShutdownUrgency.js"

/** Exit code after a second stop signal cut the drain short. */
export const urgentExitCode = 130

const stopSignals = ["SIGTERM", "SIGINT", "SIGQUIT"] as const

const note = (text: string) => process.stderr.write(`corral: ${text}\n`)

/** How a failed program's cause maps to the process's exit code (default: 1). */
export interface RunMainOptions {
  readonly failureExitCode?: (cause: Cause.Cause<unknown>) => number
}

/** Runs `program` as this process's main fiber, with `ShutdownUrgency` provided and the signals above handled. */
export const runMain = <E, A>(program: Effect.Effect<A, E, ShutdownUrgency>, options: RunMainOptions = {}): void => {
  const urgency = Effect.runSync(makeShutdownUrgency)
  Runtime.makeRunMain(({ fiber, teardown }) => {
    const keepAlive = setInterval(() => undefined, 2 ** 31 - 1)
    let stopSignalsSeen = 0
    const onStop = (signal: string) => {
      // The program handles this signal itself (and has not finished handling an earlier one).
      if (process.listenerCount(signal) > 1) return
      stopSignalsSeen += 1
      if (stopSignalsSeen === 1) {
        note(`${signal}: stopping (a second signal stops without waiting)`)
        fiber.unsafeInterruptAsFork(fiber.id())
      } else if (stopSignalsSeen === 2) {
        note(`${signal} again: grace periods cut to zero (a third signal exits at once)`)
        Effect.runFork(urgency.declare)
      } else {
        // A wait no grace governs must not leave only `kill -9`: children still die (pdeathsig, PID namespaces).
        note(`${signal} a third time: exiting now, without cleanup`)
        process.exit(urgentExitCode)
      }
    }
    // Another listener (a running host's reload) answers for itself; this one only keeps SIGHUP harmless.
    const onHangup = () => {
      if (process.listenerCount("SIGHUP") <= 1) note("SIGHUP: nothing to reload (the host is not up yet); ignored")
    }
    const onUser1 = () => note("SIGUSR1: ignored (no debugger is opened)")
    for (const signal of stopSignals) process.on(signal, onStop)
    process.on("SIGHUP", onHangup)
    process.on("SIGUSR1", onUser1)
    fiber.addObserver((exit) => {
      clearInterval(keepAlive)
      for (const signal of stopSignals) process.removeListener(signal, onStop)
      process.removeListener("SIGHUP", onHangup)
      teardown(exit, (code) => {
        const final = stopSignalsSeen >= 2
          ? urgentExitCode
          : Exit.isFailure(exit)
          ? Cause.isInterruptedOnly(exit.cause) ? 0 : options.failureExitCode?.(exit.cause) ?? code
          : code
        process.exit(final)
      })
    })
  })(Effect.provideService(program, ShutdownUrgency, urgency), { disableErrorReporting: true, disablePrettyLogger: true })
}
