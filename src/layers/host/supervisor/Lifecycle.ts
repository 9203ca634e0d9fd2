/**
 * The lifecycle of one supervised component once it is `starting`: run it, and after each run let the
 * restart budget decide whether to run it again, leave it `stopped` (a clean exit the policy does not
 * restart) or end in `failed`. A crash's last stderr lines end its `last_error`. The socket the module
 * listens on is held here, across its runs, and closed when the lifecycle ends.
 */
import { Clock, Duration, Effect, Option, Random, Ref, SubscriptionRef } from "effect"
import { describeExit, type ExitInfo } from "../../../services/host/ProcessLauncher.js"
import { afterRun, type RunEnding } from "../../../services/policies/RestartBudget.js"
import { type Managed, noProcess } from "./ComponentState.js"
import { type HeldListen, runComponentOnce, type RunContext, type RunEnd } from "./ComponentRun.js"
import type { ModuleListen } from "./ModuleListen.js"

/** At most this many stderr lines end a `last_error`, each cut to `stderrLineChars`. */
export const stderrTailLines = 5
/** The longest stderr line a `last_error` quotes. */
export const stderrLineChars = 200

/** What the last process wrote: all its recent lines, and stderr alone. */
interface LastOutput {
  readonly recent: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
}

/** Forgets the finished run's child, keeping its last output in the state for the view. */
const takeLastOutput = (managed: Managed): Effect.Effect<LastOutput> =>
  Effect.gen(function*() {
    const child = yield* Ref.getAndSet(managed.child, Option.none())
    if (Option.isNone(child)) return { recent: [], stderr: [] }
    const recent = yield* child.value.recentLines
    const stderr = yield* child.value.stderrLines
    yield* SubscriptionRef.update(managed.state, (s) => ({ ...s, recentLog: recent }))
    return { recent, stderr }
  })

/** `; last stderr lines:` and the (cut) lines, or nothing when the process wrote none. */
const stderrTail = (stderr: ReadonlyArray<string>): string => {
  const lines = stderr.slice(-stderrTailLines).map((line) => line.slice(0, stderrLineChars))
  return lines.length === 0 ? "" : `; last stderr lines:\n${lines.join("\n")}`
}

const isClean = (exit: ExitInfo): boolean => exit.code === 0 && exit.signal === null

/** How a run that did not fail outright ended, for the budget and in words. */
const ending = (
  managed: Managed,
  end: Extract<RunEnd, { _tag: "Exited" | "Unhealthy" }>
): { readonly ending: RunEnding; readonly what: string } =>
  end._tag === "Unhealthy"
    ? {
      ending: "unhealthy",
      what: `${end.streak} failed health checks in a row (restart_after_unhealthy ` +
        `${managed.config.restart_policy.restart_after_unhealthy ?? end.streak}): the host stopped the process`
    }
    : end.beforeReady
    ? { ending: "crashed_starting", what: `the process ${describeExit(end.exit)} before it was ready` }
    : { ending: isClean(end.exit) ? "exited_cleanly" : "crashed", what: `process ${describeExit(end.exit)}` }

/** Closes the component's held socket, if a run bound one (after its last process is gone). */
const releaseHeld = (held: HeldListen): Effect.Effect<void> =>
  Effect.flatMap(Ref.get(held), Option.match({ onNone: () => Effect.void, onSome: (listen) => listen.release }))

/** Runs `managed` (already `starting`) until it is stopped, stays stopped after a clean exit, or fails. */
export const lifecycle = (run: RunContext, managed: Managed): Effect.Effect<void> =>
  Effect.acquireUseRelease(Ref.make(Option.none<ModuleListen>()), (held) => runs(run, managed, held), releaseHeld)

const runs = (run: RunContext, managed: Managed, held: HeldListen): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { transition } = run.transitions
    // Launches in a row that found the host out of descriptors: retried with backoff, outside the budget.
    let starved = 0
    while (true) {
      const end = yield* runComponentOnce(run, managed, held)
      const output = yield* takeLastOutput(managed)
      if (end._tag === "Fatal") {
        const reason = end.failure.message
        yield* transition(managed, "failed", reason, { lastError: reason, ...noProcess })
        return
      }
      if (end._tag === "OutOfDescriptors") {
        const { backoff_initial_ms, backoff_max_ms } = managed.config.restart_policy
        const delayMs = Math.min(backoff_max_ms, backoff_initial_ms * 2 ** Math.min(starved++, 16))
        const at = yield* Clock.currentTimeMillis
        yield* transition(
          managed,
          "starting",
          `${end.detail}; the host is out of descriptors, retrying in ${delayMs} ms (not counted against the restart budget)`,
          { lastError: end.detail, ...noProcess, nextAttemptAt: at + delayMs, report: null }
        )
        yield* Effect.sleep(Duration.millis(delayMs))
        continue
      }
      starved = 0
      const now = yield* Clock.currentTimeMillis
      const jitter = yield* Random.next
      const state = yield* SubscriptionRef.get(managed.state)
      const policy = managed.config.restart_policy
      const { ending: how, what } = ending(managed, end)
      const { decision, state: budget } = afterRun(policy, state.budget, how, now, jitter)
      const exit = end._tag === "Exited" ? end.exit : state.lastStop?.exit
      // A crash is explained by what the process said last; a clean exit or a host stop needs no quote.
      const tail = how === "crashed" || how === "crashed_starting" ? stderrTail(output.stderr) : ""
      const gone = { budget, ...noProcess, report: null }
      if (decision._tag === "Stay") {
        const reason = `${what}; ${decision.reason}`
        yield* transition(managed, "stopped", reason, { ...gone, lastError: reason, nextAttemptAt: null }, exit)
        return
      }
      if (decision._tag === "GiveUp") {
        const reason = `${what}; ${decision.reason}`
        yield* transition(managed, "failed", reason, { ...gone, lastError: reason + tail }, exit)
        return
      }
      // The backoff counts from the exit: the host's own bookkeeping since then (the dead group's stop, this
      // record) is not added to every restart.
      const backoffFrom = end._tag === "Exited" ? Math.min(end.at, now) : now
      yield* transition(
        managed,
        "starting",
        `${what}; restart ${decision.attempt} of ${policy.max_restarts} in ${decision.delayMs} ms`,
        { ...gone, lastError: what + tail, nextAttemptAt: backoffFrom + decision.delayMs },
        exit
      )
      const waited = (yield* Clock.currentTimeMillis) - backoffFrom
      yield* Effect.sleep(Duration.millis(Math.max(0, decision.delayMs - waited)))
    }
  })
