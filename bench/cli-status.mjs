// `corral status` wall time: how long an operator waits for the status table.
//
//   node bench/cli-status.mjs [--runs N=10] [--json out.json] [--wait-quiet S=30]
//
// Starts the built host (`node dist/bin/corral.js up`, needs `npm run build`) on a fresh temp data
// dir, then runs `node dist/bin/corral.js status --data-dir <dir>` N times and, interleaved with
// it, `node -e 0` (the same machine's cost of starting node at all, measured in the same moments, so
// a busy shared machine shows in both). Reports the medians and their difference (what the CLI itself
// costs). Before each pair it waits (bounded) for the CPUs to be quiet. 127.0.0.1 only; the host is
// stopped by its pid and the temp dir removed.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "./lib/args.mjs"
import { armWatchdog, stopChild, stopChildrenOnExit } from "./lib/children.mjs"
import { corralJs, startCorralHost } from "./lib/corralHost.mjs"
import { waitForQuietCpus } from "./lib/quietCpu.mjs"
import { fmt, median } from "./lib/stats.mjs"

const { intFlag, flag, exitWithUsageIfAsked } = parseArgs("bench/cli-status")
exitWithUsageIfAsked("usage: node bench/cli-status.mjs [--runs N=10] [--json out.json] [--wait-quiet S=30]\n")
const runs = intFlag("runs", 10)
const jsonOut = flag("json")
const waitQuietS = intFlag("wait-quiet", 30)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-bench-cli-"))
const cleanup = () => fs.rmSync(dataDir, { recursive: true, force: true })
stopChildrenOnExit({ signals: ["SIGINT", "SIGTERM"], message: (s) => `bench/cli-status: ${s}, stopping\n`, cleanup })
armWatchdog({ ms: 5 * 60_000, message: "bench/cli-status: over 5 minutes, giving up\n", exitCode: 1, cleanup, unref: true })

/** Wall time of one run of `argv` in ms; the run must exit 0 within 30 s. */
const wallMs = (argv) => {
  const start = performance.now()
  const result = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", timeout: 30_000 })
  const ms = performance.now() - start
  if (result.status !== 0) throw new Error(`${argv.join(" ")} exited ${result.status}: ${result.stderr}`)
  return ms
}

const host = await startCorralHost({ dataDir, commandPrefix: [] })
const status = [process.execPath, corralJs, "status", "--data-dir", dataDir]
const baseline = [process.execPath, "-e", "0"]
// One untimed run each: the first run reads the files from disk, the others find them cached.
wallMs(status)
wallMs(baseline)

const statusMs = []
const baselineMs = []
const loads = []
const quietDeadline = Date.now() + waitQuietS * 1000
for (let i = 0; i < runs; i++) {
  const { load } = await waitForQuietCpus({ windowMs: 200, maxMs: Math.max(0, Math.min(3_000, quietDeadline - Date.now())), below: 0.1 })
  loads.push(Math.max(load.cpu0, load.cpu1))
  statusMs.push(wallMs(status))
  baselineMs.push(wallMs(baseline))
}
await stopChild(host.proc)

const result = {
  runs,
  status_median_ms: median(statusMs),
  node_e_0_median_ms: median(baselineMs),
  cli_cost_ms: median(statusMs) - median(baselineMs),
  other_load_median: median(loads),
  status_ms: statusMs.map((ms) => Math.round(ms)),
  node_e_0_ms: baselineMs.map((ms) => Math.round(ms)),
  cpus: os.cpus().length,
  node: process.version
}
process.stdout.write(
  `corral status: median ${fmt(result.status_median_ms, 0)} ms over ${runs} runs; node -e 0: ${fmt(result.node_e_0_median_ms, 0)} ms; ` +
    `the CLI's own cost: ${fmt(result.cli_cost_ms, 0)} ms (others' CPU load, median of the worse CPU: ${fmt(result.other_load_median * 100, 0)}%)\n`
)
if (jsonOut !== undefined) fs.writeFileSync(jsonOut, `${JSON.stringify(result, null, 2)}\n`)
