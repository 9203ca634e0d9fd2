/**
 * The simulation's findings, pinned: each schedule that once broke an invariant, written out step by
 * step, so it stays a regression test when the generator changes and its seed and path replay something
 * else. Each runs in well under a second of real time.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeEchoServices } from "../support/brokerFixture.js"
import { runSchedule } from "./runSchedule.js"
import type { Schedule } from "./schedule.js"
import type { WorldFiles } from "./world.js"

let root = ""
let files: WorldFiles = { dataDir: "", servicesDir: "" }

beforeAll(() => {
  root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-sim-findings-"))
  const echo = makeEchoServices(root)
  echo.define("echo", { endpoint: { kind: "tcp" }, ready_timeout_ms: 2_000 })
  files = { dataDir: root, servicesDir: echo.servicesDir }
})
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

/** Runs `schedule` and fails with its story and violations when an invariant breaks. */
const passes = async (schedule: Schedule) => {
  const outcome = await runSchedule(files, schedule)
  expect(outcome.ok ? [] : [...outcome.story.map((line, i) => `${i}. ${line}`), ...outcome.violations]).toEqual([])
}

describe("the simulation's findings (issue 11), pinned", () => {
  // Found as `npm run simulate -- --seed -1275262284 --path "491:0:6:7"`: the reload's stop of b (which
  // ignores TERM) was interrupted by the host's stop after `stopping`, and b stayed `stopping` for good.
  it("a stop cut off by the host's stop still ends in stopped", () =>
    passes({
      seed: 0,
      steps: [
        { _tag: "Hang", target: "middleware.b" },
        { _tag: "Reload", variant: "b-removed" },
        { _tag: "Command", kind: "stop", component: "middleware.b" }
      ]
    }))

  // Reported as `--seed 7 --path "447:0:5:9"` (no longer that schedule): a reload's start wave holds the
  // new b until a is ready; an operator stop of b meanwhile found no run, and the wave started b after it.
  it("a stop of a component waiting in a reload's start wave is not undone by the wave", () =>
    passes({
      seed: 0,
      steps: [
        {
          _tag: "NextLaunch",
          target: "middleware.a",
          fault: { startDelayMs: 0, exitAfter: null, ignoresTerm: false, children: 0, readyAfterMs: 500, init: { _tag: "Correct" } },
          times: 1
        },
        { _tag: "Command", kind: "restart", component: "middleware.a" },
        { _tag: "Reload", variant: "b-changed" },
        { _tag: "Command", kind: "stop", component: "middleware.b" },
        { _tag: "Wait", ms: 2_500 }
      ]
    }))
})
