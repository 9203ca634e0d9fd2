// Host benchmarks: (a) invocation overhead of a host hook versus calling the module directly, and
// (b) crash-to-ready restart latency of a supervised module versus the module's own start time.
//
//   node bench/host.mjs [--requests N=2000] [--warmup N=200] [--reps N=3] [--concurrency 1,4,16]
//                       [--restarts N=5] [--part overhead|restart|all] [--json out.json] [--no-pin] [--wait-quiet S=30]
//                       [--restart-poll-ms N=2]
//
// Runs `node dist/bin/corral.js up` (needs `npm run build`) on a fresh temp data dir whose operator
// fragment `config/50-bench.json` adds a one-component hook `bench` = ["middleware.dator"], lifts
// Dator's quota (so every request is the same `allow`) and relaxes Dator's restart budget. The host
// and everything it spawns run on CPU 0 (`taskset -c 0`), this process on CPU 1. 127.0.0.1 only.
// Every process this bench starts is stopped by its pid (SIGTERM, SIGKILL after a grace); a watchdog
// ends the run if it overruns; the temp dir is removed. Shared helpers: bench/lib/.
// One long file on purpose: it reads top to bottom as the method (setup, (a), (b), the report).
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { parseArgs } from "./lib/args.mjs"
import { armWatchdog, killAllNow, stopChild, stopChildrenOnExit, track } from "./lib/children.mjs"
import { corralJs, startCorralHost } from "./lib/corralHost.mjs"
import { cpuStat, otherLoad, processCpuTicks } from "./lib/procStat.mjs"
import { waitQuietBeforePoint, waitQuietBeforeRun } from "./lib/quietCpu.mjs"
import { fmt, median, percentile } from "./lib/stats.mjs"

const benchDir = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(benchDir, "..")
const datorPy = path.join(root, "modules/dator/dator.py")

// ---------------------------------------------------------------------------------------------
// Flags

const { argv, die, flag, numFlag, intFlag, has, exitWithUsageIfAsked } = parseArgs("bench/host")
exitWithUsageIfAsked(
  "usage: node bench/host.mjs [--requests N=2000] [--warmup N=200] [--reps N=3] [--concurrency 1,4,16]\n" +
    "                           [--restarts N=5] [--part overhead|restart|all] [--json out.json] [--no-pin] [--wait-quiet S=30]\n" +
    "                           [--restart-poll-ms N=2]\n"
)
const REQUESTS = intFlag("requests", 2000)
const WARMUP = intFlag("warmup", 200, 0)
const REPS = intFlag("reps", 3)
const RESTARTS = intFlag("restarts", 5)
const CONCURRENCY = flag("concurrency", "1,4,16").split(",").map((s) => {
  const n = Number(s)
  if (!Number.isInteger(n) || n < 1 || n > 16) die(`--concurrency: ${s} (1..16: Dator's max_concurrency is 16)`)
  return n
})
const PART = flag("part", "all")
if (!["overhead", "restart", "all"].includes(PART)) die(`--part: ${PART}`)
const JSON_OUT = flag("json", undefined)
const PIN = !has("no-pin")
const WAIT_QUIET_S = numFlag("wait-quiet", 30)

// Issue 10's targets for the hook path (one module): overhead p50 at concurrency 1, host CPU per
// hook step, and host ÷ direct invocations/s at concurrency 16 (host and module share CPU 0).
const TARGET_OVERHEAD_MS = 0.15
const TARGET_HOST_CPU_US = 100
const TARGET_THROUGHPUT_RATIO = 0.8
const TARGET_RATIO_CONCURRENCY = 16
const TARGET_RESTART_MS = 50
const BUDGET_MS = 240_000 // the whole run; ~1.5 min expected
const POLL_MS = 2 // own start: GET /readyz every 2 ms
/** Restart: GET /v1/components/middleware.dator every N ms (the host serves each poll on CPU 0, next to the starting module). */
const RESTART_POLL_MS = numFlag("restart-poll-ms", 2)
const STABLE_AFTER_SEC = 1 // restart_policy.stable_after_sec in the fragment (see README)

// ---------------------------------------------------------------------------------------------
// Processes we start: tracked by pid, stopped by pid (bench/lib/children.mjs).

let tempDir

function removeTemp() {
  if (tempDir !== undefined) {
    fs.rmSync(tempDir, { recursive: true, force: true })
    tempDir = undefined
  }
}

stopChildrenOnExit({
  signals: ["SIGINT", "SIGTERM"],
  message: (signal) => `bench/host: ${signal}: stopping what it started\n`,
  cleanup: removeTemp
})
const watchdog = armWatchdog({
  ms: BUDGET_MS,
  message: `bench/host: watchdog: over ${BUDGET_MS / 1000} s, aborting\n`,
  exitCode: 3,
  cleanup: removeTemp
})

const log = (text) => process.stderr.write(`${text}\n`)

// ---------------------------------------------------------------------------------------------
// Small helpers

const nowMs = () => Number(process.hrtime.bigint()) / 1e6

/** utime+stime of a pid in clock ticks (USER_HZ, 100/s), or 0 if it is gone. */
const cpuTicks = (pid) => processCpuTicks(pid, 0)

/** The pids below `pid` (children of every thread, recursively; at most 64), from /proc. */
const descendants = (pid) => {
  const found = []
  const queue = [pid]
  while (queue.length > 0 && found.length < 64) {
    const parent = queue.shift()
    let tids = []
    try {
      tids = fs.readdirSync(`/proc/${parent}/task`)
    } catch {
      continue
    }
    for (const tid of tids) {
      try {
        for (const child of fs.readFileSync(`/proc/${parent}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)) {
          found.push(child)
          queue.push(child)
        }
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return found
}

/**
 * utime+stime of a module in clock ticks: the component's pid is the launcher's wrapper (sandbox,
 * PID namespace), which waits for the module it started; a child's CPU reaches its parent only when
 * the child exits, so the module's own processes are summed.
 */
const moduleCpuTicks = (pid) => (pid === undefined ? 0 : [pid, ...descendants(pid)].reduce((sum, p) => sum + cpuTicks(p), 0))

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** One HTTP exchange; resolves { status, text } or rejects. */
function request(options, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      const chunks = []
      res.on("data", (c) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", reject)
    if (options.timeout !== undefined) req.setTimeout(options.timeout, () => req.destroy(new Error("timeout")))
    req.end(body)
  })
}

function which(program) {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const candidate = path.join(dir, program)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      if (fs.statSync(candidate).isFile()) return candidate
    } catch {}
  }
  return undefined
}

const pinPrefix = (cpu) => (PIN ? ["taskset", "-c", String(cpu)] : [])

// ---------------------------------------------------------------------------------------------
// The host

async function startHost(dataDir) {
  const { proc, up, stderr } = await startCorralHost({ dataDir, commandPrefix: pinPrefix(0) })
  const notReady = up.components.filter((c) => c.phase !== "ready")
  if (notReady.length > 0) throw new Error(`components not ready: ${JSON.stringify(notReady)}`)
  const token = fs.readFileSync(path.join(dataDir, "run", "control.token"), "utf8").trim()
  const control = JSON.parse(fs.readFileSync(path.join(dataDir, "run", "control.json"), "utf8"))
  const url = new URL(control.url)
  return { proc, up, token, url, stderr }
}

async function component(host, agent, id) {
  const reply = await request({
    agent,
    host: host.url.hostname,
    port: Number(host.url.port),
    method: "GET",
    path: `/v1/components/${id}`,
    headers: { authorization: `Bearer ${host.token}` },
    timeout: 2_000
  })
  if (reply.status !== 200) throw new Error(`GET /v1/components/${id}: ${reply.status} ${reply.text}`)
  return JSON.parse(reply.text)
}

// ---------------------------------------------------------------------------------------------
// (a) invocation overhead

function envelopeBody(i) {
  return Buffer.from(JSON.stringify({ id: `bench-${i}`, hook: "bench", subject: "bench", payload: { n: i, text: "hello" } }))
}

/** A closed loop of `conc` workers over `n` requests; latencies (ms) into `lat` when given. */
async function closedLoop(target, agent, conc, n, lat, offset) {
  let next = 0
  let errors = 0
  let firstError
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= n) return
      const body = envelopeBody(offset + i)
      const options = {
        agent,
        host: target.host,
        port: target.port,
        method: "POST",
        path: target.path,
        headers: { "content-type": "application/json", "content-length": body.length, ...target.headers },
        timeout: 10_000
      }
      const t0 = process.hrtime.bigint()
      let reply
      try {
        reply = await request(options, body)
      } catch (error) {
        errors++
        firstError ??= String(error)
        continue
      }
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6
      if (lat !== null) lat[i] = elapsed
      let ok = reply.status === 200
      if (ok) {
        try {
          ok = target.check(JSON.parse(reply.text))
        } catch {
          ok = false
        }
      }
      if (!ok) {
        errors++
        firstError ??= `${reply.status} ${reply.text.slice(0, 200)}`
      }
    }
  }
  await Promise.all(Array.from({ length: conc }, worker))
  return { errors, firstError }
}

let requestCounter = 0

/**
 * Dator's request and connection totals from its open /healthz (this GET is one of each, on its own
 * connection); `connections` is null for an SDK that closes every connection (no such counter).
 */
async function datorTotals(datorUrl) {
  const reply = await request({ agent: false, host: datorUrl.hostname, port: Number(datorUrl.port), path: "/healthz", timeout: 5_000 })
  const health = JSON.parse(reply.text)
  return { requests: health.accepted, connections: health.connections_accepted ?? null }
}

async function runPoint(target, conc, pids, datorUrl) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conc, maxFreeSockets: conc })
  try {
    // Counts our own processes as "other" too: they are idle between points.
    await waitQuietBeforePoint()
    if (WARMUP > 0) {
      await closedLoop(target, agent, conc, WARMUP, null, requestCounter)
      requestCounter += WARMUP
    }
    const lat = new Float64Array(REQUESTS)
    // CPU 0's processes of ours: the host itself (not its children) and each module's process tree.
    const ownCpu0Ticks = () => cpuTicks(pids.host) + moduleCpuTicks(pids.dator) + moduleCpuTicks(pids.arca)
    const ticksBefore = ownCpu0Ticks()
    const hostBefore = cpuTicks(pids.host)
    const datorBefore = moduleCpuTicks(pids.dator)
    const totalsBefore = await datorTotals(datorUrl)
    const selfBefore = process.cpuUsage()
    const statBefore = cpuStat()
    const t0 = nowMs()
    const { errors, firstError } = await closedLoop(target, agent, conc, REQUESTS, lat, requestCounter)
    const wallMs = nowMs() - t0
    requestCounter += REQUESTS
    const statAfter = cpuStat()
    const self = process.cpuUsage(selfBefore)
    const ours0 = ownCpu0Ticks() - ticksBefore
    const ours1 = ((self.user + self.system) / 1e6) * 100
    const other = otherLoad(statBefore, statAfter, PIN ? ours0 : 0, PIN ? ours1 : 0)
    const totalsAfter = await datorTotals(datorUrl)
    // Minus this bracket's own /healthz GET; an SDK without the counter opens one per request.
    const datorRequests = totalsAfter.requests - totalsBefore.requests - 1
    const datorConnections = totalsAfter.connections === null ? datorRequests : totalsAfter.connections - totalsBefore.connections - 1
    const sorted = Float64Array.from(lat).sort()
    return {
      target: target.name,
      concurrency: conc,
      requests: REQUESTS,
      errors,
      first_error: firstError ?? null,
      p50_ms: percentile(sorted, 0.5),
      p90_ms: percentile(sorted, 0.9),
      p99_ms: percentile(sorted, 0.99),
      max_ms: sorted[sorted.length - 1],
      per_s: REQUESTS / (wallMs / 1000),
      wall_ms: wallMs,
      host_cpu_us_per_req: ((cpuTicks(pids.host) - hostBefore) * 10_000) / REQUESTS,
      dator_cpu_us_per_req: ((moduleCpuTicks(pids.dator) - datorBefore) * 10_000) / REQUESTS,
      dator_connections_per_req: datorConnections / Math.max(1, datorRequests),
      other_load: PIN ? other : null,
      contended: PIN ? other.cpu0 > 0.1 || other.cpu1 > 0.2 : null
    }
  } finally {
    agent.destroy()
  }
}

/** A module's launch token, read from its environment (the bench runs as the host's user or root). */
function moduleToken(pid) {
  for (const child of [pid, ...fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)]) {
    const entry = fs.readFileSync(`/proc/${child}/environ`, "utf8").split("\0").find((e) => e.startsWith("CORRAL_MODULE_TOKEN="))
    if (entry !== undefined) return entry.slice("CORRAL_MODULE_TOKEN=".length)
  }
  throw new Error(`no CORRAL_MODULE_TOKEN in the environment of ${pid} or its children`)
}

async function overheadBench(host, datorView, pids) {
  const dator = new URL(datorView.endpoint)
  const direct = {
    name: "direct",
    host: dator.hostname,
    port: Number(dator.port),
    path: "/v1/middleware/invoke",
    // Dator serves only the host that launched it: the direct baseline borrows its token.
    headers: { authorization: `Bearer ${moduleToken(pids.dator)}` },
    check: (j) => j.decision === "allow"
  }
  const viaHost = {
    name: "host",
    host: host.url.hostname,
    port: Number(host.url.port),
    path: "/v1/hooks/bench/invoke",
    headers: { authorization: `Bearer ${host.token}` },
    check: (j) => j.decision?.decision === "allow" && j.steps?.length === 1
  }
  const runs = []
  let redos = 0
  for (let rep = 0; rep < REPS; rep++) {
    for (const conc of CONCURRENCY) {
      const order = rep % 2 === 0 ? [direct, viaHost] : [viaHost, direct]
      for (const target of order) {
        let run = await runPoint(target, conc, pids, dator)
        if (run.contended && redos < 2) {
          redos++
          const again = await runPoint(target, conc, pids, dator)
          log(`  (redo: other load cpu0 ${(run.other_load.cpu0 * 100).toFixed(0)}% cpu1 ${(run.other_load.cpu1 * 100).toFixed(0)}%)`)
          const worse = (r) => Math.max(r.other_load.cpu0, r.other_load.cpu1 / 2)
          again.redone = true
          if (worse(again) < worse(run)) run = again
        }
        run.rep = rep + 1
        runs.push(run)
        log(
          `  rep ${rep + 1} c=${String(conc).padStart(2)} ${target.name.padEnd(6)} p50 ${fmt(run.p50_ms)} ms  p99 ${fmt(run.p99_ms)} ms  ` +
            `${run.per_s.toFixed(0)}/s  errors ${run.errors}${run.contended ? "  (contended)" : ""}`
        )
      }
    }
  }
  const summary = CONCURRENCY.map((conc) => {
    const pick = (name) => runs.filter((r) => r.concurrency === conc && r.target === name)
    const d = pick("direct")
    const h = pick("host")
    const stat = (rs) => ({
      p50_ms: median(rs.map((r) => r.p50_ms)),
      p50_min: Math.min(...rs.map((r) => r.p50_ms)),
      p50_max: Math.max(...rs.map((r) => r.p50_ms)),
      p99_ms: median(rs.map((r) => r.p99_ms)),
      per_s: median(rs.map((r) => r.per_s)),
      host_cpu_us_per_req: median(rs.map((r) => r.host_cpu_us_per_req)),
      dator_cpu_us_per_req: median(rs.map((r) => r.dator_cpu_us_per_req)),
      dator_connections_per_req: median(rs.map((r) => r.dator_connections_per_req)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      contended: rs.filter((r) => r.contended).length
    })
    const paired = d.map((dr) => {
      const hr = h.find((x) => x.rep === dr.rep)
      return hr === undefined ? NaN : hr.p50_ms - dr.p50_ms
    })
    const ratios = d.map((dr) => {
      const hr = h.find((x) => x.rep === dr.rep)
      return hr === undefined ? NaN : hr.per_s / dr.per_s
    })
    const sd = stat(d)
    const sh = stat(h)
    const overhead = median(paired)
    return {
      concurrency: conc,
      direct: sd,
      host: sh,
      overhead_p50_ms: overhead,
      overhead_p50_per_rep_ms: paired,
      overhead_p99_ms: sh.p99_ms - sd.p99_ms,
      throughput_ratio: median(ratios),
      throughput_ratio_per_rep: ratios,
      target_ms: TARGET_OVERHEAD_MS,
      met: overhead <= TARGET_OVERHEAD_MS
    }
  })
  return { runs, summary, redos }
}

// ---------------------------------------------------------------------------------------------
// (b) restart latency

/** Spawns argv (module on `port`) and times spawn → GET /readyz 200 (polled every POLL_MS). */
async function timeOwnStart(argvStart, port, env, cwd) {
  const t0Wall = Date.now()
  const t0 = nowMs()
  // stderr is piped (as the host pipes it) and read for the module's "serving" log line (its ts:
  // when its server listens), to split its start into the interpreter's part and the rest.
  const proc = spawn(argvStart[0], argvStart.slice(1), { stdio: ["ignore", "ignore", "pipe"], env, cwd })
  const exited = track(proc, "own-start module")
  let servingAt
  let stderrBuffer = ""
  proc.stderr.on("data", (chunk) => {
    stderrBuffer += chunk.toString("utf8")
    let nl
    while ((nl = stderrBuffer.indexOf("\n")) !== -1) {
      const line = stderrBuffer.slice(0, nl)
      stderrBuffer = stderrBuffer.slice(nl + 1)
      try {
        const entry = JSON.parse(line)
        if (entry.msg === "serving" && servingAt === undefined) servingAt = Date.parse(entry.ts)
      } catch {}
    }
  })
  let dead = false
  exited.then(() => {
    dead = true
  })
  let readyMs
  let polls = 0
  const deadline = t0 + 15_000
  while (nowMs() < deadline && !dead) {
    polls++
    try {
      const reply = await request({ agent: false, host: "127.0.0.1", port, method: "GET", path: "/readyz", timeout: 1_000 })
      if (reply.status === 200) {
        readyMs = nowMs() - t0
        break
      }
    } catch {}
    await sleep(POLL_MS)
  }
  await stopChild(proc, 3_000)
  if (readyMs === undefined) throw new Error(`own start of ${argvStart.join(" ")} never answered /readyz`)
  return { ms: readyMs, polls, listeningMs: servingAt === undefined ? NaN : servingAt - t0Wall }
}

function readLifecycle(dataDir) {
  const file = path.join(dataDir, "trace", "lifecycle.jsonl")
  try {
    return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l))
  } catch {
    return []
  }
}

async function restartBench(host, dataDir) {
  const python = which("python3")
  if (python === undefined) throw new Error("python3 not on PATH")
  const isScript = fs.readFileSync(python).subarray(0, 2).toString("latin1") === "#!"
  const real = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).stdout.trim()
  const workDir = path.join(dataDir, "own-start")
  fs.mkdirSync(workDir, { recursive: true, mode: 0o700 })
  const cleanEnv = (port) => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    CORRAL_MODULE_ID: "dator",
    CORRAL_COMPONENT_ID: "middleware.dator",
    CORRAL_MODULE_PORT: String(port),
    CORRAL_MODULE_TOKEN: randomBytes(32).toString("hex"),
    CORRAL_DATA_DIR: dataDir
  })
  const setpriv = which("setpriv")
  const prlimit = which("prlimit")
  const variants = [
    { name: "python3 (PATH)", detail: `python3 → ${python}${isScript ? " (a script: pyenv shim)" : ""}`, argv: (port) => [...pinPrefix(0), "python3", datorPy, "--port", String(port)], headline: true }
  ]
  if (setpriv !== undefined && prlimit !== undefined) {
    variants.push({
      name: "python3 (PATH) in the host's wrapper",
      detail: "setpriv --pdeathsig KILL --no-new-privs -- prlimit --nofile --as -- sh -c 'umask 077; exec \"$@\"' python3 …",
      argv: (port) => [
        ...pinPrefix(0), setpriv, "--pdeathsig", "KILL", "--no-new-privs", "--",
        prlimit, "--nofile=1024:1024", `--as=${4 * 1024 * 1024 * 1024}`, "--",
        "/bin/sh", "-c", "umask 077; unset PWD; exec \"$@\"", "sh", "python3", datorPy, "--port", String(port)
      ]
    })
  }
  if (isScript && real.startsWith("/")) {
    variants.push({ name: "real interpreter (no shim)", detail: real, argv: (port) => [...pinPrefix(0), real, datorPy, "--port", String(port)] })
  }
  // Own starts and restarts are interleaved (own starts, kill, own starts, kill, …): python's start
  // time on a shared machine drifts by 2–3× within minutes, so each kill is paired with own starts
  // taken seconds before it.
  const own = variants.map((v) => ({ name: v.name, detail: v.detail, headline: v.headline === true, samples_ms: [], listening_ms: [] }))
  const ownRound = async () => {
    for (const [i, v] of variants.entries()) {
      const port = await freePort()
      const { ms, listeningMs } = await timeOwnStart(v.argv(port), port, cleanEnv(port), workDir)
      own[i].samples_ms.push(ms)
      own[i].listening_ms.push(listeningMs)
    }
  }
  const datorLog = path.join(dataDir, "logs", "middleware.dator.log")
  const servingAtOf = (pid) => {
    try {
      const lines = fs.readFileSync(datorLog, "utf8").split("\n")
      for (let i = lines.length - 1; i >= 0; i--) {
        if (!lines[i].includes('"serving"')) continue
        try {
          const entry = JSON.parse(lines[i])
          if (entry.pid === pid) return Date.parse(entry.ts)
        } catch {}
      }
    } catch {}
    return NaN
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const kills = []
  const failures = []
  try {
    let view = await component(host, agent, "middleware.dator")
    for (let k = 0; k < RESTARTS; k++) {
      const roundStart = nowMs()
      await ownRound()
      log(`  own start round ${k + 1}: ${own.map((o) => `${o.name} ${o.samples_ms.at(-1).toFixed(1)} ms`).join(", ")}`)
      // Up for longer than stable_after_sec: this crash is a first one, with the first backoff.
      await sleep(Math.max(0, STABLE_AFTER_SEC * 1000 + 150 - (nowMs() - roundStart)))
      view = await component(host, agent, "middleware.dator")
      if (view.phase !== "ready" || view.pid === null) throw new Error(`dator not ready before kill: ${view.phase}`)
      const oldPid = view.pid
      const eventsBefore = readLifecycle(dataDir).length
      const hostTicks0 = cpuTicks(host.proc.pid)
      const killWall = Date.now()
      const t0 = nowMs()
      process.kill(oldPid, "SIGKILL")
      let polls = 0
      const phases = []
      let readyAt
      const deadline = t0 + 15_000
      while (nowMs() < deadline) {
        polls++
        view = await component(host, agent, "middleware.dator")
        if (phases.at(-1) !== view.phase) phases.push(view.phase)
        if (view.phase === "ready" && view.pid !== null && view.pid !== oldPid) {
          readyAt = nowMs()
          break
        }
        if (view.phase === "failed") break
        await sleep(RESTART_POLL_MS)
      }
      if (readyAt === undefined && view.phase !== "failed") throw new Error("dator not ready within 15 s of the kill")
      const hostCpuMs = (cpuTicks(host.proc.pid) - hostTicks0) * 10
      const events = readLifecycle(dataDir).slice(eventsBefore).filter((e) => e.component === "middleware.dator")
      if (view.phase === "failed") {
        // A finding, not a sample: record why, start it again (operator start) and go on.
        failures.push({ kill: k + 1, last_error: view.last_error, events })
        log(`  kill ${k + 1}: dator went to \`failed\`: ${view.last_error}; starting it again`)
        await request({ agent, host: host.url.hostname, port: Number(host.url.port), method: "POST", path: "/v1/components/middleware.dator/start", headers: { authorization: `Bearer ${host.token}` }, timeout: 5_000 })
        const until = nowMs() + 15_000
        while (nowMs() < until && (await component(host, agent, "middleware.dator")).phase !== "ready") await sleep(20)
        continue
      }
      const crash = events.find((e) => e.to === "starting")
      const ready = events.find((e) => e.to === "ready")
      const backoff = crash === undefined ? NaN : Number(/ in (\d+) ms/.exec(crash.reason)?.[1] ?? NaN)
      const crashAt = crash === undefined ? NaN : Date.parse(crash.at)
      const readyEventAt = ready === undefined ? NaN : Date.parse(ready.at)
      const servingAt = servingAtOf(view.pid)
      const relaunchToListening = servingAt - crashAt - backoff
      const kill = {
        own_start_ms: own.find((o) => o.headline).samples_ms.at(-1),
        old_pid: oldPid,
        new_pid: view.pid,
        restart_ms: readyAt - t0,
        backoff_ms: backoff,
        // From the host's own lifecycle events (wall clock, ms resolution):
        kill_to_crash_noticed_ms: crashAt - killWall,
        crash_noticed_to_ready_event_ms: readyEventAt - crashAt,
        relaunch_to_ready_ms: readyEventAt - crashAt - backoff,
        // From the module's own "serving" log line (its server listens):
        relaunch_to_listening_ms: relaunchToListening,
        listening_to_ready_event_ms: readyEventAt - servingAt,
        // Everything but the module's own start (spawn → listening): the host's part of the restart.
        host_side_ms: readyAt - t0 - relaunchToListening,
        // CPU the host itself used on CPU 0 from the kill to ready (serving the polls, readiness probes, …).
        host_cpu_ms: hostCpuMs,
        polls,
        phases_seen: phases,
        crash_reason: crash?.reason ?? null
      }
      kills.push(kill)
      log(
        `  kill ${k + 1}: restart ${kill.restart_ms.toFixed(1)} ms (backoff ${backoff} ms, noticed after ${kill.kill_to_crash_noticed_ms} ms, ` +
          `relaunch→ready ${kill.relaunch_to_ready_ms} ms) phases ${phases.join("→")}`
      )
    }
  } finally {
    agent.destroy()
  }
  for (const o of own) {
    o.median_ms = median(o.samples_ms)
    o.listening_median_ms = median(o.listening_ms)
  }
  const headline = own.find((o) => o.headline)
  const pairedMedian = median(kills.map((k) => k.restart_ms - k.own_start_ms))
  const restartMedian = median(kills.map((k) => k.restart_ms))
  const backoffMedian = median(kills.map((k) => k.backoff_ms))
  const overMinusBackoff = median(kills.map((k) => k.restart_ms - k.backoff_ms)) - headline.median_ms
  return {
    own_start: own,
    kills,
    failures,
    restart_median_ms: restartMedian,
    backoff_median_ms: backoffMedian,
    restart_minus_own_start_ms: restartMedian - headline.median_ms,
    restart_minus_own_start_paired_ms: pairedMedian,
    host_side_median_ms: median(kills.map((k) => k.host_side_ms)),
    own_start_after_listening_median_ms: median(headline.samples_ms.map((ms, i) => ms - headline.listening_ms[i])),
    restart_minus_own_start_each_ms: kills.map((k) => k.restart_ms - k.own_start_ms),
    restart_minus_backoff_minus_own_start_ms: overMinusBackoff,
    target_ms: TARGET_RESTART_MS,
    met: pairedMedian < TARGET_RESTART_MS
  }
}

// ---------------------------------------------------------------------------------------------
// Main

function printOverhead(result) {
  const out = []
  out.push(
    `(a) invocation overhead — ${REQUESTS} requests per point after ${WARMUP} warm-up, ${REPS} reps alternating direct/host; medians of the reps`
  )
  out.push("")
  out.push("| path | conc | p50 ms (min–max) | p99 ms | inv/s | host CPU µs/inv | Dator CPU µs/inv | Dator connections per inv | errors |")
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for (const s of result.summary) {
    for (const [label, st] of [["direct → Dator", s.direct], ["host hook `bench` → Dator", s.host]]) {
      out.push(
        `| ${label} | ${s.concurrency} | ${fmt(st.p50_ms)} (${fmt(st.p50_min)}–${fmt(st.p50_max)}) | ${fmt(st.p99_ms)} | ${st.per_s.toFixed(0)} | ` +
          `${label.startsWith("direct") ? "–" : st.host_cpu_us_per_req.toFixed(0)} | ${st.dator_cpu_us_per_req.toFixed(0)} | ${st.dator_connections_per_req.toFixed(3)} | ${st.errors}${st.contended > 0 ? ` (${st.contended} contended)` : ""} |`
      )
    }
  }
  out.push("")
  out.push("| conc | overhead p50 (host − direct, paired per rep) | per rep | overhead p99 | inv/s host ÷ direct (paired per rep) | per rep |")
  out.push("|---:|---:|---|---:|---:|---|")
  for (const s of result.summary) {
    out.push(
      `| ${s.concurrency} | ${fmt(s.overhead_p50_ms)} ms | ${s.overhead_p50_per_rep_ms.map((x) => fmt(x)).join(", ")} | ${fmt(s.overhead_p99_ms)} ms | ` +
        `${s.throughput_ratio.toFixed(2)}x | ${s.throughput_ratio_per_rep.map((x) => x.toFixed(2)).join(", ")} |`
    )
  }
  const at = (conc) => result.summary.find((s) => s.concurrency === conc)
  const verdict = (ok) => (ok ? "met" : "**not met**")
  const rows = []
  const c1 = at(1)
  if (c1 !== undefined) {
    rows.push(`| host CPU per hook step, concurrency 1 | ${c1.host.host_cpu_us_per_req.toFixed(0)} µs | ≤ ${TARGET_HOST_CPU_US} µs | ${verdict(c1.host.host_cpu_us_per_req <= TARGET_HOST_CPU_US)} |`)
    rows.push(`| hook overhead p50, concurrency 1 (host − direct) | ${fmt(c1.overhead_p50_ms)} ms | ≤ ${TARGET_OVERHEAD_MS} ms | ${verdict(c1.met)} |`)
  }
  const cr = at(TARGET_RATIO_CONCURRENCY)
  if (cr !== undefined) {
    rows.push(`| host CPU per hook step, concurrency ${cr.concurrency} | ${cr.host.host_cpu_us_per_req.toFixed(0)} µs | ≤ ${TARGET_HOST_CPU_US} µs | ${verdict(cr.host.host_cpu_us_per_req <= TARGET_HOST_CPU_US)} |`)
    rows.push(`| hook inv/s host ÷ direct, concurrency ${cr.concurrency} | ${cr.throughput_ratio.toFixed(2)}x | ≥ ${TARGET_THROUGHPUT_RATIO}x | ${verdict(cr.throughput_ratio >= TARGET_THROUGHPUT_RATIO)} |`)
  }
  if (rows.length > 0) {
    out.push("")
    out.push("| target (issue 10) | measured | target | |")
    out.push("|---|---:|---:|---|")
    out.push(...rows)
  }
  return out.join("\n")
}

function printRestart(result) {
  const out = []
  out.push(`(b) restart latency — median of ${RESTARTS}, own starts interleaved with the kills; /readyz polled every ${POLL_MS} ms, the component view every ${RESTART_POLL_MS} ms`)
  out.push("")
  out.push("| measurement | median ms | samples ms |")
  out.push("|---|---:|---|")
  for (const o of result.own_start) {
    out.push(`| own start: ${o.name} → /readyz 200${o.headline ? " (**baseline**)" : ""} | ${fmt(o.median_ms, 1)} | ${o.samples_ms.map((s) => s.toFixed(1)).join(", ")} |`)
  }
  const ks = result.kills
  out.push(`| restart: SIGKILL → component view \`ready\` with a new pid | ${fmt(result.restart_median_ms, 1)} | ${ks.map((k) => k.restart_ms.toFixed(1)).join(", ")} |`)
  out.push(`| … of which restart backoff (first restart: 20 ms × 1–1.2 jitter) | ${fmt(result.backoff_median_ms, 0)} | ${ks.map((k) => k.backoff_ms).join(", ")} |`)
  out.push(`| … kill → host notices the exit (lifecycle event) | ${fmt(median(ks.map((k) => k.kill_to_crash_noticed_ms)), 0)} | ${ks.map((k) => k.kill_to_crash_noticed_ms).join(", ")} |`)
  out.push(`| … relaunch → \`ready\` event (spawn, /readyz poll, init) | ${fmt(median(ks.map((k) => k.relaunch_to_ready_ms)), 0)} | ${ks.map((k) => k.relaunch_to_ready_ms).join(", ")} |`)
  out.push(`| … … of which relaunch → module listening (its "serving" log line): the module's own start | ${fmt(median(ks.map((k) => k.relaunch_to_listening_ms)), 0)} | ${ks.map((k) => k.relaunch_to_listening_ms).join(", ")} |`)
  out.push(`| … … of which module listening → \`ready\` event (/readyz poll every 15 ms, init) | ${fmt(median(ks.map((k) => k.listening_to_ready_event_ms)), 0)} | ${ks.map((k) => k.listening_to_ready_event_ms).join(", ")} |`)
  out.push(`| host CPU used from kill to ready (on CPU 0, beside the starting module) | ${fmt(median(ks.map((k) => k.host_cpu_ms)), 0)} | ${ks.map((k) => k.host_cpu_ms).join(", ")} |`)
  out.push(`| restart's host-side part (restart − relaunch→listening) | ${fmt(result.host_side_median_ms, 1)} | ${ks.map((k) => k.host_side_ms.toFixed(1)).join(", ")} |`)
  const h = result.own_start.find((o) => o.headline)
  out.push(`| own start (baseline): spawn → listening / listening → /readyz 200 seen | ${fmt(h.listening_median_ms, 0)} / ${fmt(result.own_start_after_listening_median_ms, 1)} | ${h.listening_ms.map((x) => x.toFixed(0)).join(", ")} |`)
  out.push("")
  out.push(
    `restart − own start, paired (each kill with the own start just before it), median: **${fmt(result.restart_minus_own_start_paired_ms, 1)} ms** ` +
      `(${result.restart_minus_own_start_each_ms.map((x) => x.toFixed(0)).join(", ")}; target < ${TARGET_RESTART_MS} ms: ${result.met ? "met" : "**not met**"}); ` +
      `difference of the medians ${fmt(result.restart_minus_own_start_ms, 1)} ms, without the backoff ${fmt(result.restart_minus_backoff_minus_own_start_ms, 1)} ms`
  )
  for (const f of result.failures) out.push(`kill ${f.kill}: Dator went to \`failed\` instead of restarting: ${f.last_error}`)
  return out.join("\n")
}

async function main() {
  if (!fs.existsSync(corralJs)) die("dist/bin/corral.js is missing: run `npm run build` first")
  if (PIN) {
    const r = spawnSync("taskset", ["-a", "-pc", "1", String(process.pid)], { encoding: "utf8" })
    if (r.status !== 0) die(`taskset failed: ${r.stderr}`)
  }
  const quiet = await waitQuietBeforeRun(WAIT_QUIET_S)
  if (quiet.waited_s > 0) log(`waited ${quiet.waited_s} s for the CPUs to be quiet (other load cpu0 ${(quiet.load.cpu0 * 100).toFixed(0)}%, cpu1 ${(quiet.load.cpu1 * 100).toFixed(0)}%)`)
  const started = Date.now()
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-bench-host-"))
  const dataDir = path.join(tempDir, "data")
  fs.mkdirSync(path.join(dataDir, "config"), { recursive: true })
  const fragment = {
    hooks: { bench: ["middleware.dator"] },
    components: {
      "middleware.dator": {
        restart_policy: { max_restarts: 100, window_sec: 60, stable_after_sec: STABLE_AFTER_SEC }
      }
    },
    modules: { dator: { quota: null } }
  }
  fs.writeFileSync(path.join(dataDir, "config", "50-bench.json"), `${JSON.stringify(fragment, null, 2)}\n`)

  log(`bench/host: starting the host (data dir ${dataDir})`)
  const host = await startHost(dataDir)
  const result = {
    machine: {
      date: new Date(started).toISOString(),
      command: `node bench/host.mjs ${argv.join(" ")}`.trim(),
      nproc: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? "?",
      node: process.version,
      loadavg_start: os.loadavg().map((x) => x.toFixed(2)).join(" "),
      waited_for_quiet_s: quiet.waited_s,
      pinned: PIN
    },
    settings: { requests: REQUESTS, warmup: WARMUP, reps: REPS, concurrency: CONCURRENCY, restarts: RESTARTS, poll_ms: POLL_MS, restart_poll_ms: RESTART_POLL_MS, fragment }
  }
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const dator = await component(host, agent, "middleware.dator")
    const arca = await component(host, agent, "middleware.arca")
    agent.destroy()
    const pids = { host: host.proc.pid, dator: dator.pid, arca: arca.pid }
    if (PART !== "restart") {
      log("bench/host: (a) invocation overhead")
      result.overhead = await overheadBench(host, dator, pids)
    }
    if (PART !== "overhead") {
      log("bench/host: (b) restart latency")
      result.restart = await restartBench(host, dataDir)
    }
  } finally {
    await stopChild(host.proc, 10_000)
  }
  result.machine.loadavg_end = os.loadavg().map((x) => x.toFixed(2)).join(" ")
  result.machine.elapsed_s = Math.round((Date.now() - started) / 1000)

  const text = []
  text.push(`# bench/host.mjs — ${result.machine.date}, ${result.machine.command}`)
  text.push(`node ${process.version}, ${result.machine.nproc} CPUs (${result.machine.cpu}); host + modules on CPU 0, client on CPU 1: ${PIN}; load ${result.machine.loadavg_start} → ${result.machine.loadavg_end}; ${result.machine.elapsed_s} s`)
  text.push("")
  if (result.overhead) text.push(printOverhead(result.overhead), "")
  if (result.restart) text.push(printRestart(result.restart), "")
  process.stdout.write(`${text.join("\n")}\n`)
  if (JSON_OUT !== undefined) {
    fs.writeFileSync(JSON_OUT, `${JSON.stringify(result, null, 2)}\n`)
    log(`bench/host: wrote ${JSON_OUT}`)
  }
}

main()
  .then(() => {
    clearTimeout(watchdog)
    removeTemp()
  })
  .catch((error) => {
    process.stderr.write(`bench/host: ${error.stack ?? error}\n`)
    killAllNow()
    removeTemp()
    clearTimeout(watchdog)
    process.exitCode = 1
  })
