/**
 * SIGHUP reloads a running `corral up`'s config, as daemons have done since inetd: each signal runs
 * `HostReload` and prints what changed, or every problem (nothing changed), on stderr like the host's
 * other lines. Signals that arrive during a reload are folded into one more reload after it.
 */
import { Effect, Queue } from "effect"
import type { Scope } from "effect"
import { HostReload, type ReloadOutcome, type ReloadRefused } from "../../services/host/HostReload.js"
import { stderrLine } from "./Terminal.js"

const list = (ids: ReadonlyArray<string>): string => (ids.length === 0 ? "none" : ids.join(", "))

/** What a reload did, in one line. */
export const reloadOutcomeLine = (outcome: ReloadOutcome): string =>
  `added ${list(outcome.added)}; removed ${list(outcome.removed)}; restarted ${list(outcome.restarted)}; ` +
  `unchanged ${list(outcome.unchanged)}; hooks ${list(outcome.hooks)}`

/** Why a reload changed nothing: a header line, then one line per problem. */
export const reloadRefusedLines = (refused: ReloadRefused): ReadonlyArray<string> => [
  `reload refused, nothing changed: the config has ${refused.problems.length} problem${refused.problems.length === 1 ? "" : "s"}`,
  ...refused.problems.map((problem) => `  ${problem}`)
]

/** Runs one reload and prints its outcome; never fails (a refused reload is an outcome). */
const reloadAndReport = (reload: HostReload["Type"]["reload"]): Effect.Effect<void> =>
  reload.pipe(
    Effect.matchEffect({
      onSuccess: (outcome) => stderrLine(`corral: reloaded — ${reloadOutcomeLine(outcome)}`),
      onFailure: (refused) => Effect.forEach(reloadRefusedLines(refused), (line) => stderrLine(`corral: ${line}`), { discard: true })
    })
  )

/** Reloads on every SIGHUP for the life of the scope; the listener is removed when the scope closes. */
export const reloadOnHangup: Effect.Effect<void, never, HostReload | Scope.Scope> = Effect.gen(function*() {
  const { reload } = yield* HostReload
  // One slot: hangups while a reload runs ask for one more reload, not one each.
  const hangups = yield* Queue.sliding<void>(1)
  const onHangup = () => {
    Queue.unsafeOffer(hangups, undefined)
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => process.on("SIGHUP", onHangup)),
    () => Effect.sync(() => process.removeListener("SIGHUP", onHangup))
  )
  yield* Effect.forkScoped(
    Effect.forever(
      Queue.take(hangups).pipe(
        Effect.zipRight(stderrLine("corral: SIGHUP: reloading the config")),
        Effect.zipRight(reloadAndReport(reload))
      )
    )
  )
})
