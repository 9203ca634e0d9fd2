/**
 * Deterministic simulation of the host (issue 11). Fast-check generates seeded schedules that
 * interleave faults with operator commands, hook invocations and broker hellos; each runs against the
 * real supervisor, hook runner, executors, reload and backend registry on simulated processes and a
 * simulated module transport, in virtual time, and these invariants are checked after every step
 * (`invariants.ts`, one function each):
 *
 * - `routedOnlyWhenRoutable`: no invocation reaches a component outside `ready`/`degraded`, nor a process
 *   that is not its current one.
 * - `restartsWithinBudget`: automatic restarts in any `window_sec` never exceed `max_restarts`.
 * - `failedLeftOnlyByOperator`: `failed` is left only by an operator start or restart (or a reload).
 * - `commandsEndWithinBound`: every stop ends in `stopped` or `failed` within `stop_timeout_ms` of its
 *   turn; no command runs past its bound or dies.
 * - `noProcessOutlivesItsOwner`: no simulated process outlives its component, its backend's registry
 *   entry, its parent process, or the host.
 * - `oneLaunchPerHelloBurst`: concurrent hellos for one missing backend launch exactly one.
 * - `everyRequestAnswered`: every accepted invocation (and hello) is answered within its bound, during
 *   the host's drain too; never a defect or an interruption.
 * - `traceConsistentWithPhases`: the lifecycle trace chains phase to phase along the phase graph and
 *   ends in the phase the supervisor shows; a `failed` component says why.
 *
 * A failing schedule is shrunk and printed with the command that replays it. Knobs (environment, set by
 * `npm run simulate -- --seed N --schedules N --path P`): SIM_SEED (default 7), SIM_SCHEDULES (default
 * 1000), SIM_PATH, SIM_MAX_STEPS (default 24).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeEchoServices } from "../support/brokerFixture.js"
import { runSchedule } from "./runSchedule.js"
import { schedule, type Schedule } from "./schedule.js"
import type { WorldFiles } from "./world.js"

const numberFrom = (name: string): number | undefined => {
  const text = process.env[name]
  if (text === undefined || text === "") return undefined
  const value = Number(text)
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`)
  return value
}

/**
 * `npm test` searches the same schedules every time (a red run there is a regression, never luck);
 * `npm run simulate` without `--seed` draws a fresh seed and prints it.
 */
const defaultSeed = 7

const seed = numberFrom("SIM_SEED") ?? defaultSeed
const schedules = numberFrom("SIM_SCHEDULES") ?? 1_000
const maxSteps = numberFrom("SIM_MAX_STEPS") ?? 24
const replayPath = process.env["SIM_PATH"]

let root = ""
let files: WorldFiles = { dataDir: "", servicesDir: "" }

beforeAll(() => {
  root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-sim-"))
  const echo = makeEchoServices(root)
  echo.define("echo", { endpoint: { kind: "tcp" }, ready_timeout_ms: 2_000 })
  files = { dataDir: root, servicesDir: echo.servicesDir }
})
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

/** The printout of a failing schedule: its steps, what broke, and how to replay it. */
const report = async (found: Schedule, runSeed: number, path: string, shrinks: number): Promise<string> => {
  const outcome = await runSchedule(files, found)
  const lines = outcome.ok
    ? ["(the shrunk schedule passed when run again: the simulation is not deterministic here; that is a bug of the simulation)"]
    : [
      ...outcome.story.map((line, i) => `${i === outcome.step ? "→" : " "} ${i}. ${line}`),
      `violations after step ${outcome.step}:`,
      ...outcome.violations.map((v) => `  - ${v}`)
    ]
  return [
    `The simulation found a schedule that breaks an invariant (runtime seed ${found.seed}; shrunk ${shrinks} times):`,
    ...lines,
    `Replay exactly this schedule: npm run simulate -- --seed ${runSeed} --path "${path}"`,
    `Search again from the same seed: npm run simulate -- --seed ${runSeed} --schedules ${schedules}`
  ].join("\n")
}

describe("the host in deterministic simulation", () => {
  it(`keeps every invariant after every step of ${schedules} seeded fault schedules`, async () => {
    const started = Date.now()
    let launches = 0
    let virtualMs = 0
    const property = fc.asyncProperty(schedule(maxSteps), async (s) => {
      const outcome = await runSchedule(files, s)
      if (outcome.ok) {
        launches += outcome.launches
        virtualMs += outcome.virtualMs
      }
      return outcome.ok
    })
    const details = await fc.check(property, {
      numRuns: schedules,
      seed,
      ...(replayPath === undefined ? {} : { path: replayPath })
    })
    if (details.failed) {
      const found = details.counterexample?.[0]
      const message = found === undefined
        ? `the simulation failed without a counterexample (seed ${details.seed}): ${String(details.errorInstance)}`
        : await report(found, details.seed, details.counterexamplePath ?? "", details.numShrinks)
      console.error(message)
      expect.fail(message)
    }
    console.log(
      `simulation: ${details.numRuns} schedules (seed ${details.seed}), ${launches} launches, ` +
        `${Math.round(virtualMs / 1000)} virtual s, in ${((Date.now() - started) / 1000).toFixed(1)} s`
    )
  }, schedules * 2_000 + 300_000)
})
