// The soak (issue 11, "Soak"): a real host (`corral up`, built dist/) with the bundled Dator and Arca
// and a broker backend under a steady mixed load for --minutes — hook invocations (Dator, then Arca),
// broker hellos, and every --churn-s seconds an operator action in turn (restart via the control API,
// `corral restart --wait`, `corral reload` after a config change, POST /v1/reload):
//
//   npm run soak -- [--minutes M=10] [--workers N=3] [--churn-s S=30] [--warmup-min W=1]
//                   [--max-rss-slope-mib X=2] [--max-fd-slope Y=1] [--json out.json]
//
// The host's RSS and open descriptors are sampled every 500 ms; their least-squares slope per minute
// (over the samples after the warm-up) must stay under the limits; the slope of each minute's lowest
// RSS is reported too (the sawtooth of garbage collection hides a slow leak less there). Invariants (exit 1 if one fails):
// zero lost requests (an invocation without an HTTP answer, a hello without a reply frame); every
// acknowledged Arca record is a row of its SQLite with that record id, none twice; no process the host
// started is left after it stops on SIGTERM; the slopes are within their limits.
//
// Loopback and the run's own Unix sockets only; processes stopped by pid; a watchdog bounds the run;
// the temp dir is removed.
import * as fs from "node:fs"
import { parseArgs } from "./lib/args.mjs"
import { compareAcks, readArchive } from "./lib/arcaDb.mjs"
import { hello } from "./lib/brokerClient.mjs"
import { makeTempDir, prepareDataDir, startCampaignHost } from "./lib/campaignHost.mjs"
import { armWatchdog, killAllNow, stopChild, stopChildrenOnExit } from "./lib/children.mjs"
import { controlOf } from "./lib/controlClient.mjs"
import { corralJs } from "./lib/corralHost.mjs"
import { hookAction } from "./lib/hookTraffic.mjs"
import { watchHost } from "./lib/hostWatch.mjs"
import { summariseLifecycle } from "./lib/lifecycleTrace.mjs"
import { startLoop, totals } from "./lib/loadLoop.mjs"
import { startOperatorChurn } from "./lib/operatorChurn.mjs"
import { openFds } from "./lib/procTree.mjs"
import { rssBytes } from "./lib/procStat.mjs"
import { fmt, leastSquaresSlope, median } from "./lib/stats.mjs"

const { argv, die, numFlag, intFlag, flag, exitWithUsageIfAsked } = parseArgs("bench/soak")
exitWithUsageIfAsked(
  "usage: npm run soak -- [--minutes M=10] [--workers N=3] [--churn-s S=30] [--warmup-min W=1]\n" +
    "                      [--max-rss-slope-mib X=2] [--max-fd-slope Y=1] [--json out.json]\n"
)
const MINUTES = numFlag("minutes", 10, { min: 1 })
const WORKERS = intFlag("workers", 3)
const CHURN_S = numFlag("churn-s", 30, { min: 5 })
const WARMUP_MIN = numFlag("warmup-min", 1)
const MAX_RSS_SLOPE_MIB = numFlag("max-rss-slope-mib", 2)
const MAX_FD_SLOPE = numFlag("max-fd-slope", 1)
const JSON_OUT = flag("json", undefined)
const BUDGET_MS = MINUTES * 60_000 + 180_000
if (WARMUP_MIN >= MINUTES) die(`--warmup-min (${WARMUP_MIN}) must be shorter than --minutes (${MINUTES})`)

let tempDir
const removeTemp = () => {
  if (tempDir !== undefined) fs.rmSync(tempDir, { recursive: true, force: true })
  tempDir = undefined
}
stopChildrenOnExit({ signals: ["SIGINT", "SIGTERM"], message: (s) => `bench/soak: ${s}: stopping what it started\n`, cleanup: removeTemp })
const watchdog = armWatchdog({ ms: BUDGET_MS, message: `bench/soak: watchdog: over ${BUDGET_MS / 1000} s, aborting\n`, exitCode: 3, cleanup: removeTemp })
const log = (text) => process.stderr.write(`${text}\n`)
const lostIn = (outcomes) => Object.entries(outcomes).filter(([k]) => k.startsWith("lost:") || k.startsWith("no reply:")).reduce((a, [, v]) => a + v, 0)
const counts = (o) => Object.entries(o ?? {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} ${k}`).join(", ") || "–"

async function main() {
  if (!fs.existsSync(corralJs)) die("dist/bin/corral.js is missing: run `npm run build` first")
  const started = Date.now()
  tempDir = makeTempDir("corral-soak-")
  const dataDir = prepareDataDir(tempDir, { chaos: false })
  log(`bench/soak: ${MINUTES} min; data dir ${dataDir}`)
  const host = await startCampaignHost(dataDir)
  const hostPid = host.proc.pid
  const control = controlOf(dataDir)
  let hostDied
  let stopping = false
  host.proc.once("exit", (code, signal) => {
    if (!stopping) hostDied = { code, signal }
  })
  const minute = () => `minute ${Math.floor((Date.now() - started) / 60_000) + 1}`
  const watch = watchHost({ control, hostPid, phase: minute })
  const acks = new Map()
  const retries = {}
  const ingress = startLoop({ workers: WORKERS, pauseMs: 20, phase: minute, action: hookAction({ control, hook: "ingress", prefix: "soak", acks, retries }) })
  const hellos = startLoop({
    workers: 1,
    pauseMs: 100,
    phase: minute,
    action: async () => {
      const r = await hello(host.brokerSocket, "echo")
      // A reply frame (hello.ok or an error code) is an answer; no frame at all is a lost request.
      return r.ok ? "hello.ok" : r.code !== undefined ? `error: ${r.code}` : `no reply: ${r.error}`
    }
  })
  const churn = startOperatorChurn({ dataDir, control, components: ["middleware.dator", "middleware.arca"], everyMs: CHURN_S * 1000, log })
  const endAt = started + MINUTES * 60_000
  while (Date.now() < endAt && hostDied === undefined) {
    await new Promise((r) => setTimeout(r, Math.min(10_000, endAt - Date.now())))
    const last = watch.samples.at(-1)
    log(`  ${minute()}: ${ingress.attempted()} invocations, ${hellos.attempted()} hellos; host ${last?.fds} fds, RSS ${fmt((last?.rss ?? NaN) / 1_048_576, 1)} MiB`)
  }
  await churn.stop()
  await Promise.all([ingress.stop(), hellos.stop()])
  await watch.stop()
  const end = { fds: openFds(hostPid), rss: rssBytes(hostPid) }
  stopping = true
  const stop = await stopChild(host.proc, 15_000)
  await new Promise((r) => setTimeout(r, 1_000))
  const left = watch.census.leftBehind(new Set([process.pid]))
  const archive = readArchive(host.dbPath)
  const arca = archive.error === undefined ? compareAcks(acks, archive) : { error: archive.error }

  const after = watch.samples.filter((s) => s.t_s >= WARMUP_MIN * 60 && Number.isFinite(s.rss) && Number.isFinite(s.fds))
  const xs = after.map((s) => s.t_s / 60)
  const rssSlope = leastSquaresSlope(xs, after.map((s) => s.rss / 1_048_576))
  const fdSlope = leastSquaresSlope(xs, after.map((s) => s.fds))
  const perMinute = Object.keys(ingress.byPhase).map((m) => {
    const ss = watch.samples.filter((s) => s.phase === m)
    const rss = ss.map((s) => s.rss / 1_048_576).filter(Number.isFinite)
    return { minute: m, rss_mib: median(rss), rss_min_mib: Math.min(...rss), fds: median(ss.map((s) => s.fds)), invocations: ingress.byPhase[m], hellos: hellos.byPhase[m] ?? {} }
  })
  // RSS is a sawtooth (V8 grows its heap, then collects): the slope of each minute's lowest reading
  // follows live memory, and so tells a slow leak from where the last tooth happened to end.
  const floors = perMinute.map((m, i) => [i + 1, m.rss_min_mib]).filter(([x, y]) => x > WARMUP_MIN && Number.isFinite(y))
  const rssFloorSlope = leastSquaresSlope(floors.map(([x]) => x), floors.map(([, y]) => y))
  const inv = totals(ingress.byPhase)
  const hel = totals(hellos.byPhase)
  const report = {
    machine: { date: new Date(started).toISOString(), command: `npm run soak -- ${argv.join(" ")}`.trim(), elapsed_s: Math.round((Date.now() - started) / 1000), node: process.version },
    invocations: { attempted: ingress.attempted(), outcomes: inv, lost: lostIn(inv), retried_same_id: retries },
    hellos: { attempted: hellos.attempted(), outcomes: hel, lost: lostIn(hel) },
    operator: { actions: churn.actions, restarts_of_failed: watch.operatorRestarts, probes_failed: Object.values(watch.probes).reduce((a, p) => a + p.failed, 0) },
    lifecycle: summariseLifecycle(dataDir),
    per_minute: perMinute,
    slopes: { warmup_min: WARMUP_MIN, samples: after.length, rss_mib_per_min: rssSlope, rss_floor_mib_per_min: rssFloorSlope, fds_per_min: fdSlope },
    samples: watch.samples.map((x) => [Math.round(x.t_s * 10) / 10, x.fds, Math.round(x.rss / 1024)]),
    arca,
    processes: { seen: watch.census.seenCount(), left_behind: left },
    host: { start: watch.samples[0], end, stop, died: hostDied ?? null }
  }
  const checks = [
    ["zero lost requests", report.invocations.lost === 0 && report.hellos.lost === 0, `${report.invocations.lost} invocations, ${report.hellos.lost} hellos`],
    [
      "every acknowledged Arca record is a row with that record id; none twice",
      arca.error === undefined && arca.missing.length === 0 && arca.mismatched.length === 0 && arca.conflicts.length === 0 && arca.duplicates.length === 0,
      arca.error ?? `${arca.acknowledged} acknowledged, ${arca.rows} rows, ${arca.missing.length} missing, ${arca.mismatched.length} mismatched, ${arca.duplicates.length} duplicated`
    ],
    ["no process left behind", left.length === 0, `${report.processes.seen} seen, ${left.length} left ${JSON.stringify(left).slice(0, 300)}`],
    ["the host lived and stopped on SIGTERM", hostDied === undefined && stop.how === "SIGTERM", `died ${JSON.stringify(hostDied ?? null)}, stop ${stop.how} in ${stop.ms} ms`],
    [`RSS slope ≤ ${MAX_RSS_SLOPE_MIB} MiB/min after ${WARMUP_MIN} min`, rssSlope <= MAX_RSS_SLOPE_MIB, `${fmt(rssSlope, 2)} MiB/min over ${after.length} samples`],
    [`descriptor slope ≤ ${MAX_FD_SLOPE}/min after ${WARMUP_MIN} min`, fdSlope <= MAX_FD_SLOPE, `${fmt(fdSlope, 2)}/min`]
  ]
  report.invariants = checks.map(([name, ok, seen]) => ({ name, ok: Boolean(ok), seen }))

  const o = []
  o.push(`# bench/soak.mjs — ${report.machine.date}, \`${report.machine.command}\` (${report.machine.elapsed_s} s, node ${process.version})`, "")
  o.push("| minute | host RSS MiB (median, lowest) | host fds (median) | invocations by outcome | hellos by outcome |", "|---|---:|---:|---|---|")
  for (const m of perMinute) o.push(`| ${m.minute.replace("minute ", "")} | ${fmt(m.rss_mib, 1)}, ${fmt(m.rss_min_mib, 1)} | ${fmt(m.fds, 0)} | ${counts(m.invocations)} | ${counts(m.hellos)} |`)
  o.push("", `invocations: ${report.invocations.attempted} attempted (${counts(inv)}); retried with the same id: ${counts(retries)}`)
  o.push(`hellos: ${report.hellos.attempted} attempted (${counts(hel)})`)
  o.push(`operator actions: ${Object.entries(churn.actions).map(([k, v]) => `${k} ${v.ok} ok/${v.failed} failed`).join("; ")}; restarts of failed components: ${counts(watch.operatorRestarts)}; control probes failed: ${report.operator.probes_failed}`)
  o.push(`restarts (lifecycle trace): ${Object.entries(report.lifecycle.restarts).map(([id, r]) => `${id}: ${counts(r)}`).join("; ") || "–"}`)
  o.push(`slopes after ${WARMUP_MIN} min (least squares over ${after.length} samples, every 500 ms): RSS ${fmt(rssSlope, 3)} MiB/min (per-minute lowest readings: ${fmt(rssFloorSlope, 3)} MiB/min), descriptors ${fmt(fdSlope, 3)}/min; host at start ${report.host.start?.fds} fds / ${fmt((report.host.start?.rss ?? NaN) / 1_048_576, 1)} MiB, at end ${end.fds} fds / ${fmt(end.rss / 1_048_576, 1)} MiB`)
  o.push(arca.error ? `Arca: ${arca.error}` : `Arca: ${arca.acknowledged} acknowledged, ${arca.rows} rows, ${arca.unacknowledged} rows no answer acknowledged`)
  o.push(`processes: ${report.processes.seen} seen below the host, ${left.length} left behind; host stopped by ${stop.how} in ${stop.ms} ms`, "")
  o.push("| invariant | verdict | seen |", "|---|---|---|")
  for (const i of report.invariants) o.push(`| ${i.name} | ${i.ok ? "pass" : "**FAIL**"} | ${i.seen} |`)
  process.stdout.write(`${o.join("\n")}\n`)
  if (JSON_OUT !== undefined) fs.writeFileSync(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`)
  return report.invariants.every((i) => i.ok) ? 0 : 1
}

main()
  .then((code) => {
    clearTimeout(watchdog)
    removeTemp()
    process.exitCode = code
  })
  .catch((error) => {
    process.stderr.write(`bench/soak: ${error.stack ?? error}\n`)
    killAllNow()
    removeTemp()
    clearTimeout(watchdog)
    process.exitCode = 1
  })
