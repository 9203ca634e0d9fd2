// The fault campaign (issue 11, "Real faults"): a real host (`corral up`, built dist/) with the
// bundled Dator and Arca, the misbehaving `bench.chaos` module (bench/fixtures/chaos_module.py) and a
// broker backend, driven through phases of faults while hook invocations (Dator, then Arca) and
// broker hellos run throughout:
//
//   npm run faults -- [--seconds S=180] [--seed N] [--workers N=4] [--json out.json]
//
// Phases (shares of --seconds): baseline; SIGKILL of random modules; SIGSTOP/SIGCONT of random
// modules; the chaos module answering garbage, bad decisions, too much, stalling or closing; fuzzed
// broker frames; idle-connection floods; slowloris (slowhttptest) on the control server; descriptor
// exhaustion (the host's soft nofile lowered with prlimit, plus a flood); cool-down. A watcher reads
// the components every 500 ms and restarts `failed` ones as an operator would.
//
// Then the host gets SIGTERM and the run checks its invariants (exit 1 if one fails): every Arca
// acknowledgement is a row of its SQLite with that record id and no envelope id is stored twice;
// no process the host started is left; the broker answered a valid hello after fuzzing; no chaos
// answer was a silent `allow` or came later than its timeout + 3 s; no invocation went unanswered
// outside the descriptor-exhaustion phase; the host recovered from that phase; operator probes were
// answered in every other phase; the host never died and stopped on SIGTERM.
//
// Loopback and the run's own Unix sockets only. Processes are stopped by pid; a watchdog bounds the
// run; the temp dir is removed. Choices (targets, fuzz cases, chaos modes) follow --seed.
import * as fs from "node:fs"
import { setTimeout as sleep } from "node:timers/promises"
import { parseArgs } from "./lib/args.mjs"
import { hello } from "./lib/brokerClient.mjs"
import { makeTempDir, prepareDataDir, startCampaignHost } from "./lib/campaignHost.mjs"
import { armWatchdog, killAllNow, stopChild, stopChildrenOnExit } from "./lib/children.mjs"
import { controlOf } from "./lib/controlClient.mjs"
import { corralJs } from "./lib/corralHost.mjs"
import { faultInvariants, printFaultReport } from "./lib/faultReport.mjs"
import * as phases from "./lib/faultPhases.mjs"
import { compareAcks, readArchive } from "./lib/arcaDb.mjs"
import { hookAction, outcomeOf } from "./lib/hookTraffic.mjs"
import { summariseLifecycle } from "./lib/lifecycleTrace.mjs"
import { startLoop } from "./lib/loadLoop.mjs"
import { openFds } from "./lib/procTree.mjs"
import { rssBytes } from "./lib/procStat.mjs"
import { seeded } from "./lib/seeded.mjs"
import { watchHost } from "./lib/hostWatch.mjs"

const { argv, die, flag, intFlag, exitWithUsageIfAsked } = parseArgs("bench/faults")
exitWithUsageIfAsked("usage: npm run faults -- [--seconds S=180] [--seed N] [--workers N=4] [--json out.json]\n")
const SECONDS = intFlag("seconds", 180, 30)
const SEED = intFlag("seed", Math.floor(Math.random() * 2 ** 31), 0)
const WORKERS = intFlag("workers", 4)
const JSON_OUT = flag("json", undefined)
const BUDGET_MS = SECONDS * 1000 + 240_000

/** Phase name → [function, share of --seconds]. */
const PLAN = [
  ["baseline", phases.baseline, 0.05],
  ["sigkill", phases.sigkill, 0.18],
  ["sigstop", phases.sigstop, 0.14],
  ["chaos", phases.chaos, 0.1],
  ["fuzz", phases.fuzz, 0.1],
  ["flood", phases.flood, 0.1],
  ["slowloris", phases.slowloris, 0.1],
  ["fd-exhaustion", phases.fdExhaustion, 0.1],
  ["cooldown", phases.baseline, 0.13]
]

let tempDir
const removeTemp = () => {
  if (tempDir !== undefined) fs.rmSync(tempDir, { recursive: true, force: true })
  tempDir = undefined
}
stopChildrenOnExit({ signals: ["SIGINT", "SIGTERM"], message: (s) => `bench/faults: ${s}: stopping what it started\n`, cleanup: removeTemp })
const watchdog = armWatchdog({ ms: BUDGET_MS, message: `bench/faults: watchdog: over ${BUDGET_MS / 1000} s, aborting\n`, exitCode: 3, cleanup: removeTemp })
const log = (text) => process.stderr.write(`${text}\n`)

async function main() {
  if (!fs.existsSync(corralJs)) die("dist/bin/corral.js is missing: run `npm run build` first")
  const started = Date.now()
  const rng = seeded(SEED)
  tempDir = makeTempDir("corral-faults-")
  const dataDir = prepareDataDir(tempDir, { chaos: true })
  log(`bench/faults: seed ${SEED}, ${SECONDS} s; data dir ${dataDir}`)
  const host = await startCampaignHost(dataDir)
  const hostPid = host.proc.pid
  const control = controlOf(dataDir)
  let hostDied
  let stopping = false
  host.proc.once("exit", (code, signal) => {
    if (!stopping) hostDied = { code, signal, during: phase }
  })
  const start = { fds: openFds(hostPid), rss: rssBytes(hostPid) }
  let phase = "baseline"
  const watch = watchHost({ control, hostPid, phase: () => phase })
  const acks = new Map()
  const retries = {}
  const ingress = startLoop({ workers: WORKERS, pauseMs: 20, phase: () => phase, action: hookAction({ control, hook: "ingress", prefix: `faults-${SEED}`, acks, retries }) })
  const hellos = startLoop({
    workers: 1,
    pauseMs: 50,
    phase: () => phase,
    action: async () => {
      const r = await hello(host.brokerSocket, "echo")
      return r.ok ? "hello.ok" : `error: ${r.code ?? r.error}`
    }
  })
  const ctx = { host, control, watch, rng, log }
  const reached = []
  const results = {}
  for (const [name, run, share] of PLAN) {
    if (hostDied !== undefined) break
    phase = name
    const ms = Math.round(SECONDS * 1000 * share)
    log(`bench/faults: phase ${name} (${(ms / 1000).toFixed(0)} s)`)
    const t0 = Date.now()
    results[name] = await run(ctx, ms)
    reached.push({ phase: name, seconds: Math.round((Date.now() - t0) / 100) / 10 })
  }
  phase = "final"
  await Promise.all([ingress.stop(), hellos.stop()])
  // The last operator look: every component routable again, and one invocation and hello answered.
  let finalCheck = { components: [], invoke: "not run", hello: "not run" }
  for (let i = 0; i < 40 && hostDied === undefined; i++) {
    const inv = outcomeOf(await control.invoke("ingress", { id: `final-${SEED}`, hook: "ingress", subject: "final", payload: {} }, 5_000))
    const h = await hello(host.brokerSocket, "echo")
    finalCheck = { components: watch.latest().map((c) => ({ id: c.id, phase: c.phase })), invoke: inv, hello: h.ok ? "hello.ok" : h.code ?? h.error }
    if (inv === "200 allow" && h.ok && finalCheck.components.every((c) => c.phase === "ready")) break
    await sleep(500)
  }
  await watch.stop()
  const end = { fds: openFds(hostPid), rss: rssBytes(hostPid) }
  stopping = true
  const stop = await stopChild(host.proc, 15_000)
  // The host's children die with it (SIGTERM: drained; otherwise pdeathsig): give the kernel a moment.
  await sleep(1_000)
  const left = watch.census.leftBehind(new Set([process.pid]))
  const archive = readArchive(host.dbPath)
  const arca = archive.error === undefined ? compareAcks(acks, archive) : { error: archive.error }
  const report = {
    machine: { date: new Date(started).toISOString(), command: `npm run faults -- ${argv.join(" ")}`.trim(), seed: SEED, seconds: SECONDS, elapsed_s: Math.round((Date.now() - started) / 1000), node: process.version },
    phases_reached: reached,
    phases: results,
    invocations: { attempted: ingress.attempted(), by_phase: ingress.byPhase, retried_same_id: retries },
    hellos: { attempted: hellos.attempted(), by_phase: hellos.byPhase },
    operator: { probes: watch.probes, restarts_of_failed: watch.operatorRestarts },
    lifecycle: summariseLifecycle(dataDir),
    phases_seen_by_probe: watch.phasesSeen(),
    arca,
    processes: { seen: watch.census.seenCount(), left_behind: left },
    host: { start, end, stop, died: hostDied ?? null },
    final_check: finalCheck
  }
  report.invariants = faultInvariants(report)
  printFaultReport(report)
  if (JSON_OUT !== undefined) {
    fs.writeFileSync(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`)
    log(`bench/faults: wrote ${JSON_OUT}`)
  }
  return report.invariants.every((i) => i.ok) ? 0 : 1
}

main()
  .then((code) => {
    clearTimeout(watchdog)
    removeTemp()
    process.exitCode = code
  })
  .catch((error) => {
    process.stderr.write(`bench/faults: ${error.stack ?? error}\n`)
    killAllNow()
    removeTemp()
    clearTimeout(watchdog)
    process.exitCode = 1
  })
