// Paired A/B of the host's hook path between two builds, for a shared, noisy machine: both builds'
// hosts run at once (each `corral up` on its own temp data dir, with the fragment bench/host.mjs uses:
// hook `bench` = ["middleware.dator"], no quota), and blocks of invocations alternate between them
// (A B, B A, A B, …), so load from other sessions falls on both alike. Per block: the host's CPU per
// invocation (/proc ticks of the host pid) and invocations/s; reported: medians per build and the
// median of the per-pair ratios B ÷ A.
//
//   node bench/host-ab.mjs --a <tree> --b <tree> [--blocks 8] [--block 1000] [--concurrency 16] [--json out.json]
//
// <tree> is a checkout with `npm run build` done (its dist/bin/corral.js is run). Hosts and their modules
// run on CPU 0 (`taskset -c 0`), this process on CPU 1; 127.0.0.1 only; every process it starts is
// stopped by its pid; the temp dirs are removed.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "./lib/args.mjs"
import { armWatchdog, awaitLine, stopChild, stopChildrenOnExit, track } from "./lib/children.mjs"
import { processCpuTicks } from "./lib/procStat.mjs"
import { fmt, median, percentile } from "./lib/stats.mjs"

const { die, flag, intFlag, exitWithUsageIfAsked } = parseArgs("bench/host-ab")
exitWithUsageIfAsked("usage: node bench/host-ab.mjs --a <tree> --b <tree> [--blocks 8] [--block 1000] [--concurrency 16] [--json out.json]\n")
const trees = { A: flag("a", undefined), B: flag("b", undefined) }
for (const [name, tree] of Object.entries(trees)) {
  if (tree === undefined) die(`--${name.toLowerCase()} <tree> is required`)
  if (!fs.existsSync(path.join(tree, "dist/bin/corral.js"))) die(`${tree}/dist/bin/corral.js is missing: run \`npm run build\` there`)
}
const BLOCKS = intFlag("blocks", 8)
const BLOCK = intFlag("block", 1000)
const CONC = intFlag("concurrency", 16)
const JSON_OUT = flag("json", undefined)
const TICK_MS = 10 // USER_HZ 100

const temps = []
const removeTemps = () => {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
}
stopChildrenOnExit({ signals: ["SIGINT", "SIGTERM"], message: (s) => `bench/host-ab: ${s}, stopping\n`, cleanup: removeTemps })
armWatchdog({ ms: 600_000, message: () => "bench/host-ab: over 10 min, stopping\n", exitCode: 3, cleanup: removeTemps, unref: true })

/** Starts `corral up` of `tree` on CPU 0 and resolves { proc, token, port } once it is up with every component ready. */
async function startHost(tree) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-bench-ab-"))
  temps.push(dir)
  const dataDir = path.join(dir, "data")
  fs.mkdirSync(path.join(dataDir, "config"), { recursive: true })
  const fragment = { hooks: { bench: ["middleware.dator"] }, modules: { dator: { quota: null } } }
  fs.writeFileSync(path.join(dataDir, "config", "50-bench.json"), `${JSON.stringify(fragment)}\n`)
  const argv = ["taskset", "-c", "0", process.execPath, path.join(tree, "dist/bin/corral.js"), "up", "--data-dir", dataDir]
  const proc = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] })
  const exited = track(proc, `corral host (${tree})`)
  let stderr = ""
  proc.stderr.on("data", (c) => (stderr = (stderr + c.toString("utf8")).slice(-4000)))
  const up = await awaitLine(proc.stdout, {
    pick: (line) => {
      try {
        const event = JSON.parse(line)
        return event.event === "up" ? event : undefined
      } catch {
        return undefined
      }
    },
    exited,
    timeoutMs: 30_000,
    timeoutError: () => new Error(`${tree}: host not up within 30 s; stderr: ${stderr}`),
    exitError: (code, signal) => new Error(`${tree}: host exited (${code ?? signal}); stderr: ${stderr}`)
  })
  proc.stdout.resume()
  const notReady = up.components.filter((c) => c.phase !== "ready")
  if (notReady.length > 0) throw new Error(`${tree}: components not ready: ${JSON.stringify(notReady)}`)
  const token = fs.readFileSync(path.join(dataDir, "run", "control.token"), "utf8").trim()
  const port = Number(new URL(JSON.parse(fs.readFileSync(path.join(dataDir, "run", "control.json"), "utf8")).url).port)
  return { proc, token, port, agent: new http.Agent({ keepAlive: true, maxSockets: CONC }) }
}

/** One invocation of hook `bench`; resolves its latency in ms, or rejects on anything but a 200 allow. */
function invoke(host, i) {
  const body = Buffer.from(JSON.stringify({ id: `ab-${i}`, hook: "bench", subject: "bench", payload: { n: i, text: "hello" } }))
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent: host.agent,
        host: "127.0.0.1",
        port: host.port,
        method: "POST",
        path: "/v1/hooks/bench/invoke",
        headers: { "content-type": "application/json", "content-length": body.length, authorization: `Bearer ${host.token}` },
        timeout: 10_000
      },
      (res) => {
        const chunks = []
        res.on("data", (c) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          if (res.statusCode === 200 && JSON.parse(text).decision?.decision === "allow") resolve(performance.now() - t0)
          else reject(new Error(`${res.statusCode} ${text.slice(0, 200)}`))
        })
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", reject)
    req.end(body)
  })
}

let counter = 0
/** `n` invocations by `CONC` workers; resolves { cpuUsPerInv, invPerS, p50Ms }. */
async function block(host, n) {
  const latencies = []
  let next = 0
  const ticks0 = processCpuTicks(host.proc.pid)
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (next++ < n) latencies.push(await invoke(host, counter++))
  }))
  const seconds = (performance.now() - t0) / 1000
  const cpuMs = (processCpuTicks(host.proc.pid) - ticks0) * TICK_MS
  return { cpuUsPerInv: (cpuMs * 1000) / n, invPerS: n / seconds, p50Ms: percentile(latencies.sort((a, b) => a - b), 0.5) }
}

async function main() {
  const pinned = spawnSync("taskset", ["-a", "-pc", "1", String(process.pid)], { encoding: "utf8" })
  if (pinned.status !== 0) die(`taskset failed: ${pinned.stderr}`)
  const hosts = { A: await startHost(trees.A), B: await startHost(trees.B) }
  const blocks = { A: [], B: [] }
  try {
    for (const name of ["A", "B"]) await block(hosts[name], Math.min(BLOCK, 300)) // warm-up
    for (let k = 0; k < BLOCKS; k++) {
      for (const name of k % 2 === 0 ? ["A", "B"] : ["B", "A"]) blocks[name].push(await block(hosts[name], BLOCK))
      const a = blocks.A[k]
      const b = blocks.B[k]
      process.stderr.write(`pair ${k + 1}: A ${fmt(a.cpuUsPerInv, 0)} µs/inv ${fmt(a.invPerS, 0)}/s · B ${fmt(b.cpuUsPerInv, 0)} µs/inv ${fmt(b.invPerS, 0)}/s\n`)
    }
  } finally {
    for (const host of Object.values(hosts)) {
      host.agent.destroy()
      await stopChild(host.proc)
    }
    removeTemps()
  }
  const med = (name, key) => median(blocks[name].map((x) => x[key]))
  const ratio = (key) => median(blocks.A.map((a, k) => blocks.B[k][key] / a[key]))
  const result = { trees, blocks: BLOCKS, block: BLOCK, concurrency: CONC, loadavg: os.loadavg(), per_block: blocks }
  const lines = [
    `# bench/host-ab.mjs — ${new Date().toISOString()}, ${BLOCKS} pairs of ${BLOCK} invocations at concurrency ${CONC}, load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
    `A = ${trees.A}, B = ${trees.B}`,
    "",
    "| | A | B | B ÷ A (median of pairs) |",
    "|---|---:|---:|---:|",
    `| host CPU µs per invocation | ${fmt(med("A", "cpuUsPerInv"), 0)} | ${fmt(med("B", "cpuUsPerInv"), 0)} | ${fmt(ratio("cpuUsPerInv"), 2)} |`,
    `| invocations/s | ${fmt(med("A", "invPerS"), 0)} | ${fmt(med("B", "invPerS"), 0)} | ${fmt(ratio("invPerS"), 2)} |`,
    `| p50 ms | ${fmt(med("A", "p50Ms"))} | ${fmt(med("B", "p50Ms"))} | ${fmt(ratio("p50Ms"), 2)} |`
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
  if (JSON_OUT !== undefined) fs.writeFileSync(JSON_OUT, `${JSON.stringify(result, null, 2)}\n`)
}

main().catch((error) => {
  process.stderr.write(`bench/host-ab: ${error.stack ?? error}\n`)
  process.exitCode = 1
})
