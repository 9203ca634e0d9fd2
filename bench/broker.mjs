// Broker benchmarks: (a) warm hello round trips for a live backend, (b) a cold start: 1,000
// concurrent hellos for a backend that is not running yet (one launch, then every reply), and (c) a
// cold start of 200 concurrent hellos for a backend whose executable is Node itself (~95 MB: the
// broker hashes the executable before its first launch).
//
//   node bench/broker.mjs [--hellos N=2000] [--reps N=3] [--ablation-requests N=3000] [--clients N=64] [--cold N=1000]
//                         [--cold-reps N=2] [--cold-modes retry,window,pipelined] [--window N=250]
//                         [--delay-ready S=0.3] [--big N=200] [--part warm|cold|big|all] [--json out.json] [--no-pin] [--wait-quiet S=30]
//
// Runs `node dist/bin/corral.js up` (needs `npm run build`) on a fresh temp data dir whose
// `services/` (0700) holds definitions (0600) of `test/fixtures/echo_backend.py` backends on unix
// sockets. The host (and the backends it launches) run on CPU 0 (`taskset -c 0`), this process on
// CPU 1. Unix sockets only. Every process this bench starts is stopped by its pid (SIGTERM, SIGKILL
// after a grace); a watchdog ends the run if it overruns; the temp dir is removed. Shared helpers: bench/lib/.
// One long file on purpose: it reads top to bottom as the method (setup, (a), (b), the report).
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { parseArgs } from "./lib/args.mjs"
import { armWatchdog, killAllNow, stopChild, stopChildrenOnExit, track } from "./lib/children.mjs"
import { corralJs, startCorralHost } from "./lib/corralHost.mjs"
import { cpuStat, otherLoad, processCpuTicks } from "./lib/procStat.mjs"
import { waitQuietBeforePoint, waitQuietBeforeRun } from "./lib/quietCpu.mjs"
import { fmt, median, percentile } from "./lib/stats.mjs"

const benchDir = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(benchDir, "..")
const echoBackend = path.join(root, "test/fixtures/echo_backend.py")
/** (c)'s backend: Node echoing on the socket the broker gives it. */
const nodeEchoBackend = "require('node:net').createServer((s) => s.pipe(s)).listen(process.env.CORRAL_BACKEND_ENDPOINT)"

// ---------------------------------------------------------------------------------------------
// Flags

const { argv, die, flag, numFlag, intFlag, has, exitWithUsageIfAsked } = parseArgs("bench/broker")
exitWithUsageIfAsked(
  "usage: node bench/broker.mjs [--hellos N=2000] [--reps N=3] [--ablation-requests N=3000] [--clients N=64] [--cold N=1000] [--cold-reps N=2]\n" +
    "                             [--cold-modes retry,window,pipelined] [--window N=250] [--delay-ready S=0.3]\n" +
    "                             [--big N=200] [--part warm|cold|big|all] [--json out.json] [--no-pin] [--wait-quiet S=30]\n"
)
const HELLOS = intFlag("hellos", 2000)
const REPS = intFlag("reps", 3)
const ABLATION_N = intFlag("ablation-requests", 3000)
const CLIENTS = intFlag("clients", 64)
const COLD = intFlag("cold", 1000)
const BIG = intFlag("big", 200)
const COLD_REPS = intFlag("cold-reps", 2)
const WINDOW = intFlag("window", 250)
const DELAY_READY = numFlag("delay-ready", 0.3)
const COLD_MODES = flag("cold-modes", "retry,window,pipelined").split(",")
for (const m of COLD_MODES) if (!["retry", "window", "pipelined"].includes(m)) die(`--cold-modes: ${m}`)
const PART = flag("part", "all")
if (!["warm", "cold", "big", "all"].includes(PART)) die(`--part: ${PART}`)
const JSON_OUT = flag("json", undefined)
const PIN = !has("no-pin")
const WAIT_QUIET_S = numFlag("wait-quiet", 30)

const BURST = 100 // the broker's per-connection hello bucket (RateLimit: 50/s, burst 100)
const MAX_CONNECTIONS = 256 // the broker's default
const TARGET_COLD_MS = 50
const OWN_START_RUNS = 5
const BUDGET_MS = 240_000 // the whole run; ~1.5 min expected
const VERSION = "1.0.0"

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
  message: (signal) => `bench/broker: ${signal}: stopping what it started\n`,
  cleanup: removeTemp
})
const watchdog = armWatchdog({
  ms: BUDGET_MS,
  message: `bench/broker: watchdog: over ${BUDGET_MS / 1000} s, aborting\n`,
  exitCode: 3,
  cleanup: removeTemp
})

const log = (text) => process.stderr.write(`${text}\n`)

// ---------------------------------------------------------------------------------------------
// Helpers

const nowMs = () => Number(process.hrtime.bigint()) / 1e6
/** Percentiles over the successful requests (a failed one is NaN in `lat` and counted as an error). */
const summarize = (lat) => {
  const sorted = Float64Array.from(lat.filter((x) => Number.isFinite(x))).sort()
  return { p50_ms: percentile(sorted, 0.5), p99_ms: percentile(sorted, 0.99), max_ms: sorted[sorted.length - 1] }
}

/** utime+stime of a pid in clock ticks (USER_HZ, 100/s), or 0 if it is gone. */
const cpuTicks = (pid) => processCpuTicks(pid, 0)

const pinPrefix = (cpu) => (PIN ? ["taskset", "-c", String(cpu)] : [])

// ---------------------------------------------------------------------------------------------
// Framing (4-byte big-endian length + UTF-8 JSON), as src/layers/broker/BrokerFraming.ts

function encodeFrame(value) {
  const body = Buffer.from(JSON.stringify(value), "utf8")
  const frame = Buffer.allocUnsafe(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, 4)
  return frame
}
class FrameReader {
  #buffer = Buffer.alloc(0)
  push(chunk) {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const frames = []
    while (this.#buffer.length >= 4) {
      const length = this.#buffer.readUInt32BE(0)
      if (this.#buffer.length < 4 + length) break
      frames.push(JSON.parse(this.#buffer.subarray(4, 4 + length).toString("utf8")))
      this.#buffer = this.#buffer.subarray(4 + length)
    }
    return frames
  }
}

let requestCounter = 0
const helloFrame = (service) => encodeFrame({ type: "hello", service, protocol: 1, request_id: `b${++requestCounter}` })

/**
 * One exchange on a fresh connection: connect, send `frames`, read `frames.length` replies, destroy
 * (as BrokerClient does). Resolves { replies, replyTimes, connectedAt } or rejects with the connect error.
 */
function exchange(socketPath, frames, onOpen, onClose) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath })
    const reader = new FrameReader()
    const replies = []
    const replyTimes = []
    let opened = false
    let settled = false
    const done = (error) => {
      if (settled) return
      settled = true
      socket.destroy()
      if (opened) onClose?.()
      if (error) reject(error)
      else resolve({ replies, replyTimes })
    }
    socket.on("connect", () => {
      opened = true
      onOpen?.()
      socket.write(frames.length === 1 ? frames[0] : Buffer.concat(frames))
    })
    socket.on("data", (chunk) => {
      const t = nowMs()
      for (const frame of reader.push(chunk)) {
        replies.push(frame)
        replyTimes.push(t)
      }
      if (replies.length >= frames.length) done()
    })
    socket.on("error", (error) => done(error))
    // A refused connection gets one `overloaded` frame and is closed: hand back what arrived.
    socket.on("close", () => done(replies.length > 0 ? undefined : Object.assign(new Error("closed without a reply"), { code: "CLOSED" })))
  })
}

/** A persistent connection: one request at a time. */
async function openConnection(socketPath) {
  const socket = net.createConnection({ path: socketPath })
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve)
    socket.once("error", reject)
  })
  const reader = new FrameReader()
  let waiter
  const queue = []
  socket.on("data", (chunk) => {
    for (const frame of reader.push(chunk)) {
      if (waiter !== undefined) {
        const w = waiter
        waiter = undefined
        w.resolve(frame)
      } else queue.push(frame)
    }
  })
  socket.on("error", (error) => waiter?.reject(error))
  socket.on("close", () => waiter?.reject(new Error("closed")))
  return {
    request(frame) {
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject }
        socket.write(frame)
      })
    },
    close() {
      socket.destroy()
    }
  }
}

/** An admin verb's body; a refusal at the connection cap (right after a burst) is retried, 50 times at most. */
async function admin(socketPath, verb = "status") {
  for (let attempt = 0; ; attempt++) {
    const { replies } = await exchange(socketPath, [encodeFrame({ type: "admin", verb, request_id: `a${++requestCounter}` })])
    const [reply] = replies
    if (reply.type !== "error" || attempt >= 50) {
      if (reply.type === "error") throw new Error(`admin ${verb}: ${JSON.stringify(reply)}`)
      return reply.body
    }
    await sleep(reply.retry_after_ms ?? 100)
  }
}

// ---------------------------------------------------------------------------------------------
// Host

async function startHost(dataDir) {
  const { proc, up, stderr } = await startCorralHost({ dataDir, commandPrefix: pinPrefix(0) })
  return { proc, up, socketPath: path.join(dataDir, "run", "broker.sock"), stderr }
}

// ---------------------------------------------------------------------------------------------
// (a) warm hellos

async function freshSequential(socketPath, service, n) {
  const lat = new Float64Array(n).fill(NaN)
  let errors = 0
  let firstError
  for (let i = 0; i < n; i++) {
    const t0 = nowMs()
    try {
      const { replies, replyTimes } = await exchange(socketPath, [helloFrame(service)])
      lat[i] = replyTimes[0] - t0
      if (replies[0].type !== "hello.ok") {
        lat[i] = NaN
        errors++
        firstError ??= JSON.stringify(replies[0])
      }
    } catch (error) {
      lat[i] = NaN
      errors++
      firstError ??= String(error)
    }
  }
  return { lat, errors, firstError }
}

async function freshConcurrent(socketPath, service, n, clients) {
  const lat = new Float64Array(n).fill(NaN)
  let next = 0
  let errors = 0
  let firstError
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= n) return
      const t0 = nowMs()
      try {
        const { replies, replyTimes } = await exchange(socketPath, [helloFrame(service)])
        lat[i] = replyTimes[0] - t0
        if (replies[0].type !== "hello.ok") {
          lat[i] = NaN
          errors++
          firstError ??= JSON.stringify(replies[0])
        }
      } catch (error) {
        lat[i] = NaN
        errors++
        firstError ??= String(error)
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, worker))
  return { lat, errors, firstError }
}

/** `n` hellos over persistent connections, `perConnection` each (≤ the rate-limit burst), `clients` at once. */
async function persistent(socketPath, service, n, clients, perConnection, makeFrame = () => helloFrame(service), expected = "hello.ok") {
  const lat = new Float64Array(n).fill(NaN)
  let next = 0
  let errors = 0
  let firstError
  const worker = async () => {
    while (next < n) {
      const conn = await openConnection(socketPath)
      try {
        for (let k = 0; k < perConnection; k++) {
          const i = next++
          if (i >= n) break
          const t0 = nowMs()
          const reply = await conn.request(makeFrame())
          lat[i] = nowMs() - t0
          if ((reply.type === "error" ? reply.code : reply.type) !== expected) {
            lat[i] = NaN
            errors++
            firstError ??= JSON.stringify(reply)
          }
        }
      } catch (error) {
        errors++
        firstError ??= String(error)
      } finally {
        conn.close()
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, worker))
  return { lat, errors, firstError }
}

/** One connection, `n` hellos back to back: how many pass the per-connection rate limit. */
async function rateLimitProbe(socketPath, service, n) {
  const conn = await openConnection(socketPath)
  const counts = {}
  let firstLimited = null
  let retryAfter = null
  const t0 = nowMs()
  try {
    for (let i = 0; i < n; i++) {
      const reply = await conn.request(helloFrame(service))
      const key = reply.type === "error" ? reply.code : reply.type
      counts[key] = (counts[key] ?? 0) + 1
      if (reply.type === "error" && reply.code === "rate_limited" && firstLimited === null) {
        firstLimited = i + 1
        retryAfter = reply.retry_after_ms ?? null
      }
    }
  } finally {
    conn.close()
  }
  return { hellos: n, counts, first_rate_limited_at: firstLimited, retry_after_ms: retryAfter, elapsed_ms: nowMs() - t0 }
}

/** Live backend of `service` and its key's launches in the spawn-budget window, from admin status. */
async function backendInfo(socketPath, service) {
  const status = await admin(socketPath)
  const backend = status.backends.find((b) => b.service === service && b.state === "live")
  const budget = status.spawn_budgets.find((b) => b.key.startsWith(`${service}@`))
  return { pid: backend?.pid ?? null, launches: budget?.used ?? 0, lastError: budget?.last_error ?? null }
}

async function warmBench(host, warmServices) {
  const socketPath = host.socketPath
  const perConnSeq = BURST
  const perConnConc = Math.min(BURST, Math.ceil(HELLOS / CLIENTS))
  const scenarios = [
    { name: "fresh connection per hello, sequential", key: "fresh-seq", clients: 1, run: (svc) => freshSequential(socketPath, svc, HELLOS) },
    { name: `one persistent connection, sequential (${perConnSeq} hellos per connection)`, key: "persistent-seq", clients: 1, run: (svc) => persistent(socketPath, svc, HELLOS, 1, perConnSeq) },
    { name: `${CLIENTS} clients, fresh connection per hello`, key: "fresh-conc", clients: CLIENTS, run: (svc) => freshConcurrent(socketPath, svc, HELLOS, CLIENTS) },
    { name: `${CLIENTS} persistent connections (${perConnConc} hellos each)`, key: "persistent-conc", clients: CLIENTS, run: (svc) => persistent(socketPath, svc, HELLOS, CLIENTS, perConnConc) }
  ]
  const runs = []
  let next = 0
  for (let rep = 0; rep < REPS; rep++) {
    const order = scenarios.map((_, i) => scenarios[(i + rep) % scenarios.length])
    for (const s of order) {
      // Each run gets a backend of its own (a service of its own, so its own registry key and spawn
      // budget): a backend the broker wrongly retires in one run cannot spoil the next.
      const svc = warmServices[next++]
      await waitQuietBeforePoint()
      const first = nowMs()
      const launch = await exchange(socketPath, [helloFrame(svc)])
      const launchMs = launch.replyTimes[0] - first
      if (launch.replies[0].type !== "hello.ok") throw new Error(`launch of ${svc} failed: ${JSON.stringify(launch.replies[0])}`)
      // warm-up, discarded
      await (s.key === "fresh-seq" ? freshSequential(socketPath, svc, 100) : s.key === "fresh-conc" ? freshConcurrent(socketPath, svc, 200, CLIENTS) : persistent(socketPath, svc, 100, Math.min(s.clients, 4), Math.min(BURST, 25)))
      const info0 = await backendInfo(socketPath, svc)
      const hostBefore = cpuTicks(host.proc.pid)
      const backendBefore = cpuTicks(info0.pid)
      const statBefore = cpuStat()
      const self0 = process.cpuUsage()
      const t0 = nowMs()
      const { lat, errors, firstError } = await s.run(svc)
      const wall = nowMs() - t0
      const self = process.cpuUsage(self0)
      const statAfter = cpuStat()
      const hostTicks = cpuTicks(host.proc.pid) - hostBefore
      const backendAfter = cpuTicks(info0.pid)
      const backendTicks = backendAfter >= backendBefore ? backendAfter - backendBefore : NaN
      const info1 = await backendInfo(socketPath, svc)
      const other = otherLoad(statBefore, statAfter, PIN ? hostTicks + (backendTicks || 0) : 0, PIN ? ((self.user + self.system) / 1e6) * 100 : 0)
      const run = {
        scenario: s.key,
        name: s.name,
        rep: rep + 1,
        service: svc,
        launch_ms: launchMs,
        hellos: HELLOS,
        ok: HELLOS - errors,
        errors,
        first_error: firstError ?? null,
        // A healthy backend retired by the broker ("no longer accepts connections") and launched again:
        relaunches: info1.launches - 1,
        backend_last_error: info1.lastError,
        ...summarize(lat),
        per_s: HELLOS / (wall / 1000),
        broker_cpu_us_per_hello: (hostTicks * 10_000) / HELLOS,
        backend_cpu_us_per_hello: (backendTicks * 10_000) / HELLOS,
        other_load: PIN ? other : null,
        contended: PIN ? other.cpu0 > 0.1 || other.cpu1 > 0.2 : null
      }
      runs.push(run)
      log(
        `  rep ${rep + 1} ${s.key.padEnd(16)} p50 ${fmt(run.p50_ms)} ms  p99 ${fmt(run.p99_ms)} ms  ${run.per_s.toFixed(0)}/s  broker CPU ${run.broker_cpu_us_per_hello.toFixed(0)} µs/hello  ` +
          `errors ${errors}${run.relaunches > 0 ? `  BACKEND RETIRED ×${run.relaunches}: ${run.backend_last_error}` : ""}${run.contended ? "  (contended)" : ""}`
      )
    }
  }
  // Ablation, one persistent connection per 100 requests, sequential: what a request costs the
  // broker with less and less of the hello path (admin healthz: framing and the serve loop only;
  // an unknown service: + rate limit + 2 stats of the definitions; a warm hello: + the executable's
  // stat, the registry and a liveness connect to the backend).
  const ablationService = warmServices[next++]
  await exchange(socketPath, [helloFrame(ablationService)])
  const ablationPid = (await backendInfo(socketPath, ablationService)).pid
  // The host's own background CPU (timers, sweepers, health checks) while nobody calls the broker:
  // subtracted from each ablation point for its "net" figure (ticks are 10 ms: use enough requests).
  await waitQuietBeforePoint()
  const idleTicks0 = cpuTicks(host.proc.pid)
  const idle0 = nowMs()
  await sleep(3_000)
  const idleUsPerMs = ((cpuTicks(host.proc.pid) - idleTicks0) * 10_000) / (nowMs() - idle0)
  log(`  host idle CPU: ${fmt(idleUsPerMs * 1000 / 1e4, 2)}% of a core`)
  const kinds = [
    ["admin healthz (frame + serve loop)", () => encodeFrame({ type: "admin", verb: "healthz", request_id: `a${++requestCounter}` }), "admin.healthz"],
    ["hello, unknown service (+ rate limit, definition lookup)", () => helloFrame("no-such-service"), "unknown_service"],
    ["hello, warm backend (+ executable stat, registry, liveness probe)", () => helloFrame(ablationService), "hello.ok"]
  ]
  const ablationRuns = []
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, makeFrame, expected] of kinds) {
      const n = ABLATION_N
      await waitQuietBeforePoint()
      const hostBefore = cpuTicks(host.proc.pid)
      const backendBefore = cpuTicks(ablationPid)
      const t0 = nowMs()
      const { lat, errors, firstError } = await persistent(socketPath, ablationService, n, 1, BURST, makeFrame, expected)
      const wall = nowMs() - t0
      const hostUs = (cpuTicks(host.proc.pid) - hostBefore) * 10_000
      const run = {
        name,
        rep: rep + 1,
        requests: n,
        errors,
        first_error: firstError ?? null,
        ...summarize(lat),
        per_s: n / (wall / 1000),
        broker_cpu_us_per_request: hostUs / n,
        broker_net_cpu_us_per_request: (hostUs - idleUsPerMs * wall) / n,
        backend_cpu_us_per_request: ((cpuTicks(ablationPid) - backendBefore) * 10_000) / n
      }
      ablationRuns.push(run)
      log(`  ablation rep ${rep + 1} ${name}: p50 ${fmt(run.p50_ms)} ms, broker CPU ${run.broker_cpu_us_per_request.toFixed(0)} µs/request (net of idle ${run.broker_net_cpu_us_per_request.toFixed(0)}), errors ${errors}`)
    }
  }
  const ablation = kinds.map(([name]) => {
    const rs = ablationRuns.filter((r) => r.name === name)
    return {
      name,
      requests: ABLATION_N,
      reps: rs.length,
      errors: rs.reduce((a, r) => a + r.errors, 0),
      p50_ms: median(rs.map((r) => r.p50_ms)),
      p99_ms: median(rs.map((r) => r.p99_ms)),
      per_s: median(rs.map((r) => r.per_s)),
      broker_cpu_us_per_request: median(rs.map((r) => r.broker_cpu_us_per_request)),
      broker_cpu_min: Math.min(...rs.map((r) => r.broker_cpu_us_per_request)),
      broker_cpu_max: Math.max(...rs.map((r) => r.broker_cpu_us_per_request)),
      broker_net_cpu_us_per_request: median(rs.map((r) => r.broker_net_cpu_us_per_request)),
      backend_cpu_us_per_request: median(rs.map((r) => r.backend_cpu_us_per_request))
    }
  })
  const probe = await rateLimitProbe(socketPath, ablationService, BURST * 2 + 50)
  log(`  rate-limit probe: ${JSON.stringify(probe.counts)}, first rate_limited at hello ${probe.first_rate_limited_at}`)
  const summary = scenarios.map((s) => {
    const rs = runs.filter((r) => r.scenario === s.key)
    return {
      scenario: s.key,
      name: s.name,
      p50_ms: median(rs.map((r) => r.p50_ms)),
      p50_min: Math.min(...rs.map((r) => r.p50_ms)),
      p50_max: Math.max(...rs.map((r) => r.p50_ms)),
      p99_ms: median(rs.map((r) => r.p99_ms)),
      per_s: median(rs.map((r) => r.per_s)),
      broker_cpu_us_per_hello: median(rs.map((r) => r.broker_cpu_us_per_hello)),
      backend_cpu_us_per_hello: median(rs.map((r) => r.backend_cpu_us_per_hello)),
      launch_ms: median(rs.map((r) => r.launch_ms)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      relaunches: rs.map((r) => r.relaunches),
      contended: rs.filter((r) => r.contended).length
    }
  })
  return { runs, summary, ablation, ablation_runs: ablationRuns, host_idle_cpu_us_per_ms: idleUsPerMs, rate_limit_probe: probe }
}

// ---------------------------------------------------------------------------------------------
// (b) cold start

/** A worker thread that polls the backends dir for the service's socket and reports (hrtime ms) when it first accepts. */
function startReadyPoller(backendsDir, prefix) {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads")
    const fs = require("node:fs")
    const net = require("node:net")
    const path = require("node:path")
    const { dir, prefix, deadlineMs } = workerData
    const start = Date.now()
    let attempts = 0
    const tick = () => {
      if (Date.now() - start > deadlineMs) { parentPort.postMessage({ error: "no ready backend socket within deadline", attempts }); return }
      let name
      try { name = fs.readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith(".sock")) } catch {}
      if (name === undefined) { setTimeout(tick, 1); return }
      attempts++
      const socket = net.createConnection({ path: path.join(dir, name) })
      socket.once("connect", () => {
        const at = Number(process.hrtime.bigint()) / 1e6
        socket.destroy()
        parentPort.postMessage({ readyAt: at, attempts, socket: name })
      })
      socket.once("error", () => { socket.destroy(); setTimeout(tick, 1) })
    }
    tick()
  `
  const worker = new Worker(code, { eval: true, workerData: { dir: backendsDir, prefix, deadlineMs: 60_000 } })
  const result = new Promise((resolve) => {
    worker.once("message", (m) => resolve(m))
    worker.once("error", (e) => resolve({ error: String(e) }))
  })
  return { result, stop: () => worker.terminate() }
}

// EPIPE/ECONNRESET: the broker refused the connection (`overloaded`, then closed) before the hello was written.
const connectRetryable = new Set(["EAGAIN", "ECONNREFUSED", "ENOENT", "EPIPE", "ECONNRESET"])

async function coldRun(host, dataDir, service, mode, COLD) {
  const socketPath = host.socketPath
  const before = await admin(socketPath)
  const poller = startReadyPoller(path.join(dataDir, "run", "backends"), `${service}-${VERSION}-`)
  await sleep(20) // the poller is running
  const stats = { overloaded: 0, maxOverloadedPerClient: 0, connectRetries: 0, connectErrorCodes: {}, otherErrors: 0, firstOtherError: null, launchedTrue: 0, ok: 0, open: 0, maxOpen: 0 }
  const replyTimes = []
  const onOpen = () => {
    stats.open++
    if (stats.open > stats.maxOpen) stats.maxOpen = stats.open
  }
  const onClose = () => {
    stats.open--
  }
  let firstSentAt
  let firstSentWall
  const wallOffset = Date.now() - nowMs() // hrtime ms → epoch ms
  const t0 = nowMs()

  /** Sends `count` hellos on one connection until every reply is hello.ok (retrying refusals). */
  const client = async (count) => {
    let overloadedHere = 0
    for (let attempt = 0; attempt < 200; attempt++) {
      const frames = Array.from({ length: count }, () => helloFrame(service))
      if (firstSentAt === undefined) {
        firstSentAt = nowMs()
        firstSentWall = Date.now()
      }
      let result
      try {
        result = await exchange(socketPath, frames, onOpen, onClose)
      } catch (error) {
        const code = error.code ?? "?"
        if (connectRetryable.has(code)) {
          stats.connectRetries++
          stats.connectErrorCodes[code] = (stats.connectErrorCodes[code] ?? 0) + 1
          await sleep(1 + Math.random() * 4)
          continue
        }
        stats.otherErrors++
        stats.firstOtherError ??= `${code}: ${error.message}`
        return
      }
      let retryAfter = null
      for (let k = 0; k < result.replies.length; k++) {
        const reply = result.replies[k]
        if (reply.type === "hello.ok") {
          stats.ok++
          replyTimes.push(result.replyTimes[k])
          if (reply.launched) stats.launchedTrue++
        } else if (reply.type === "error" && reply.code === "overloaded") {
          stats.overloaded++
          overloadedHere++
          if (overloadedHere > stats.maxOverloadedPerClient) stats.maxOverloadedPerClient = overloadedHere
          retryAfter = reply.retry_after_ms ?? 100
        } else {
          stats.otherErrors++
          stats.firstOtherError ??= JSON.stringify(reply)
        }
      }
      if (retryAfter === null) return
      count = count - result.replies.filter((r) => r.type === "hello.ok").length
      await sleep(retryAfter)
    }
    stats.otherErrors++
    stats.firstOtherError ??= "gave up after 200 attempts"
  }

  if (mode === "retry") {
    await Promise.all(Array.from({ length: COLD }, () => client(1)))
  } else if (mode === "window") {
    let next = 0
    const worker = async () => {
      while (next < COLD) {
        next++
        await client(1)
      }
    }
    await Promise.all(Array.from({ length: Math.min(WINDOW, COLD) }, worker))
  } else {
    const perConn = Math.ceil(COLD / WINDOW)
    const counts = []
    for (let left = COLD; left > 0; left -= perConn) counts.push(Math.min(perConn, left))
    await Promise.all(counts.map((c) => client(c)))
  }
  const endAt = nowMs()
  const ready = await Promise.race([poller.result, sleep(5_000).then(() => ({ error: "poller gave no answer" }))])
  await poller.stop()
  const after = await admin(socketPath)
  replyTimes.sort((a, b) => a - b)
  const readyAt = ready.readyAt
  const backend = after.backends.find((b) => b.service === service)
  // The registry's launch decision (backend started_at, epoch ms) on the client's clock.
  // (Only when there was one launch: after a relaunch, started_at is the second backend's.)
  const launchDecidedAt = backend?.started_at && after.counters.launches - before.counters.launches === 1
    ? Date.parse(backend.started_at) - wallOffset
    : NaN
  return {
    mode,
    service,
    hellos: COLD,
    ok: stats.ok,
    launched_true: stats.launchedTrue,
    launches_delta: after.counters.launches - before.counters.launches,
    coalesced_waits_delta: after.counters.coalesced_waits - before.counters.coalesced_waits,
    launches_total: after.counters.launches,
    overloaded_replies: stats.overloaded,
    max_overloaded_per_client: stats.maxOverloadedPerClient,
    connect_retries: stats.connectRetries,
    connect_error_codes: stats.connectErrorCodes,
    other_errors: stats.otherErrors,
    first_other_error: stats.firstOtherError,
    max_open_connections: stats.maxOpen,
    ready_poller: ready.error === undefined ? { attempts: ready.attempts, socket: ready.socket } : { error: ready.error },
    first_hello_to_first_reply_ms: replyTimes[0] - firstSentAt,
    first_hello_to_ready_ms: readyAt - firstSentAt,
    first_hello_to_launch_decided_ms: launchDecidedAt - firstSentAt,
    launch_decided_to_ready_ms: readyAt - launchDecidedAt,
    ready_to_first_reply_ms: replyTimes[0] - readyAt,
    ready_to_last_reply_ms: replyTimes[replyTimes.length - 1] - readyAt,
    ready_to_p50_reply_ms: percentile(replyTimes, 0.5) - readyAt,
    total_ms: endAt - t0,
    backend_state: backend?.state ?? null,
    backend_last_error: after.spawn_budgets.find((b) => b.key.startsWith(`${service}@`))?.last_error ?? null,
    met: replyTimes[replyTimes.length - 1] - readyAt <= TARGET_COLD_MS
  }
}

/** The echo backend's own start: spawn → its socket accepts a connection (polled every 1 ms). */
async function ownStart(python, workDir, i) {
  const socketPath = path.join(workDir, `own-${i}.sock`)
  fs.rmSync(socketPath, { force: true })
  const argvStart = [...pinPrefix(0), python, echoBackend, "--delay-ready", String(DELAY_READY)]
  const t0 = nowMs()
  const proc = spawn(argvStart[0], argvStart.slice(1), {
    stdio: "ignore",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", CORRAL_BACKEND_ENDPOINT: socketPath }
  })
  const exited = track(proc, "own-start backend")
  let dead = false
  exited.then(() => {
    dead = true
  })
  let readyMs
  while (!dead && nowMs() - t0 < 15_000) {
    const ok = await new Promise((resolve) => {
      const s = net.createConnection({ path: socketPath })
      s.once("connect", () => {
        s.destroy()
        resolve(true)
      })
      s.once("error", () => {
        s.destroy()
        resolve(false)
      })
    })
    if (ok) {
      readyMs = nowMs() - t0
      break
    }
    await sleep(1)
  }
  await stopChild(proc, 3_000)
  if (readyMs === undefined) throw new Error("echo backend (own start) never accepted a connection")
  return readyMs
}

async function coldBench(host, dataDir, python, coldServices) {
  const workDir = path.join(tempDir, "own")
  fs.mkdirSync(workDir, { recursive: true, mode: 0o700 })
  const own = []
  for (let i = 0; i < OWN_START_RUNS; i++) own.push(await ownStart(python, workDir, i))
  log(`  own start of echo_backend.py --delay-ready ${DELAY_READY}: ${own.map((x) => x.toFixed(1)).join(", ")} ms`)
  const runs = []
  let k = 0
  for (let rep = 0; rep < COLD_REPS; rep++) {
    for (const mode of COLD_MODES) {
      await waitQuietBeforePoint()
      const run = await coldRun(host, dataDir, coldServices[k++], mode, COLD)
      run.rep = rep + 1
      runs.push(run)
      log(
        `  ${mode.padEnd(9)} ok ${run.ok}/${COLD} launches +${run.launches_delta} launched:true ${run.launched_true}  first hello→reply ${fmt(run.first_hello_to_first_reply_ms, 1)} ms  ` +
          `(→launch decided ${fmt(run.first_hello_to_launch_decided_ms, 1)} ms, →ready ${fmt(run.first_hello_to_ready_ms, 1)} ms)  ready→first ${fmt(run.ready_to_first_reply_ms, 1)} ms  ready→last ${fmt(run.ready_to_last_reply_ms, 1)} ms  overloaded ${run.overloaded_replies}  ` +
          `connect retries ${run.connect_retries} ${JSON.stringify(run.connect_error_codes)}  max open ${run.max_open_connections}  errors ${run.other_errors}${run.first_other_error ? ` (${run.first_other_error})` : ""}` +
          `${run.backend_last_error ? `  backend last_error: ${run.backend_last_error}` : ""}`
      )
    }
  }
  const ownMedian = median(own)
  const summary = COLD_MODES.map((mode) => {
    const rs = runs.filter((r) => r.mode === mode)
    const readyToLast = median(rs.map((r) => r.ready_to_last_reply_ms))
    return {
      mode,
      runs: rs.length,
      ok: rs.map((r) => r.ok),
      launches_delta: rs.map((r) => r.launches_delta),
      launched_true: rs.map((r) => r.launched_true),
      first_hello_to_first_reply_ms: median(rs.map((r) => r.first_hello_to_first_reply_ms)),
      first_hello_minus_own_start_ms: median(rs.map((r) => r.first_hello_to_first_reply_ms)) - ownMedian,
      ready_to_first_reply_ms: median(rs.map((r) => r.ready_to_first_reply_ms)),
      ready_to_p50_reply_ms: median(rs.map((r) => r.ready_to_p50_reply_ms)),
      ready_to_last_reply_ms: readyToLast,
      ready_to_last_each: rs.map((r) => r.ready_to_last_reply_ms),
      overloaded_replies: median(rs.map((r) => r.overloaded_replies)),
      max_overloaded_per_client: Math.max(...rs.map((r) => r.max_overloaded_per_client)),
      first_hello_to_launch_decided_ms: median(rs.map((r) => r.first_hello_to_launch_decided_ms)),
      launch_decided_to_ready_ms: median(rs.map((r) => r.launch_decided_to_ready_ms)),
      connect_retries: median(rs.map((r) => r.connect_retries)),
      max_open_connections: Math.max(...rs.map((r) => r.max_open_connections)),
      errors: rs.reduce((a, r) => a + r.other_errors, 0),
      launches_ok: rs.every((r) => r.launches_delta === 1 && r.launched_true === 1),
      met: readyToLast <= TARGET_COLD_MS
    }
  })
  return { own_start_ms: own, own_start_median_ms: ownMedian, runs, summary }
}

/** (c): `BIG` hellos at once for a backend whose ~95 MB executable the broker has not hashed yet. */
async function bigBench(host, dataDir, bigServices) {
  const size = fs.statSync(process.execPath).size
  const runs = []
  for (const service of bigServices) {
    await waitQuietBeforePoint()
    const run = await coldRun(host, dataDir, service, "retry", BIG)
    runs.push(run)
    log(
      `  ${service}: ok ${run.ok}/${BIG} launches +${run.launches_delta} launched:true ${run.launched_true}  first hello→ready ${fmt(run.first_hello_to_ready_ms, 1)} ms  ` +
        `ready→first ${fmt(run.ready_to_first_reply_ms, 1)} ms  ready→last ${fmt(run.ready_to_last_reply_ms, 1)} ms  errors ${run.other_errors}${run.first_other_error ? ` (${run.first_other_error})` : ""}`
    )
  }
  return {
    executable_bytes: size,
    runs,
    ok: runs.map((r) => r.ok),
    launches_delta: runs.map((r) => r.launches_delta),
    first_hello_to_ready_ms: median(runs.map((r) => r.first_hello_to_ready_ms)),
    first_hello_to_launch_decided_ms: median(runs.map((r) => r.first_hello_to_launch_decided_ms)),
    total_ms: median(runs.map((r) => r.total_ms)),
    ready_to_last_reply_ms: median(runs.map((r) => r.ready_to_last_reply_ms)),
    ready_to_last_each: runs.map((r) => r.ready_to_last_reply_ms),
    met: runs.every((r) => r.ok === BIG && r.launches_delta === 1 && r.ready_to_last_reply_ms <= TARGET_COLD_MS)
  }
}

function printBig(result) {
  return [
    `(c) cold start — ${BIG} concurrent hellos (one connection each), executable a fresh copy of Node (${(result.executable_bytes / 1e6).toFixed(0)} MB) per run, ${result.runs.length} run(s), medians`,
    "",
    "| answered (per run) | launches (per run) | first hello → launch decided ms | → backend ready ms | → last reply ms | ready → last reply ms (each run) | target: 1 launch, all answered ≤ 50 ms after ready |",
    "|---|---|---:|---:|---:|---:|---|",
    `| ${result.ok.join(", ")} of ${BIG} | ${result.launches_delta.join(", ")} | ${fmt(result.first_hello_to_launch_decided_ms, 1)} | ${fmt(result.first_hello_to_ready_ms, 1)} | ${fmt(result.total_ms, 1)} | ${fmt(result.ready_to_last_reply_ms, 1)} (${result.ready_to_last_each.map((x) => fmt(x, 1)).join(", ")}) | ${result.met ? "met" : "**not met**"} |`
  ].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Main

function printWarm(result) {
  const out = []
  out.push(`(a) warm hellos — ${HELLOS} hellos per point (after a discarded warm-up), ${REPS} reps in rotating order; medians of the reps`)
  out.push("")
  out.push("| scenario | p50 ms (min–max) | p99 ms | hellos/s | broker CPU µs/hello | backend CPU µs/hello | failed hellos | healthy backend retired & relaunched (per rep) |")
  out.push("|---|---:|---:|---:|---:|---:|---:|---|")
  for (const s of result.summary) {
    out.push(
      `| ${s.name} | ${fmt(s.p50_ms)} (${fmt(s.p50_min)}–${fmt(s.p50_max)}) | ${fmt(s.p99_ms)} | ${s.per_s.toFixed(0)} | ${s.broker_cpu_us_per_hello.toFixed(0)} | ` +
        `${fmt(s.backend_cpu_us_per_hello, 0)} | ${s.errors}${s.contended > 0 ? ` (${s.contended} run(s) contended)` : ""} | ${s.relaunches.join(", ")} |`
    )
  }
  out.push("")
  out.push("(latency percentiles over successful hellos; hellos/s over all replies)")
  out.push("")
  out.push(`ablation (one persistent connection per 100 requests, sequential, ${ABLATION_N} requests per point, medians of ${REPS} reps; ` +
    `"net": minus the host's idle CPU, ${fmt(result.host_idle_cpu_us_per_ms * 100 / 1e3, 2)}% of a core, over the point's wall time):`)
  out.push("")
  out.push("| request | p50 ms | p99 ms | req/s | broker CPU µs/req (min–max) | net of idle | backend CPU µs/req | errors |")
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|")
  for (const a of result.ablation) {
    out.push(`| ${a.name} | ${fmt(a.p50_ms)} | ${fmt(a.p99_ms)} | ${a.per_s.toFixed(0)} | ${a.broker_cpu_us_per_request.toFixed(0)} (${a.broker_cpu_min.toFixed(0)}–${a.broker_cpu_max.toFixed(0)}) | ` +
      `${a.broker_net_cpu_us_per_request.toFixed(0)} | ${a.backend_cpu_us_per_request.toFixed(0)} | ${a.errors} |`)
  }
  out.push("")
  out.push(`first hello of each run (launches its backend, no ready delay): median ${fmt(median(result.runs.map((r) => r.launch_ms)), 1)} ms`)
  const p = result.rate_limit_probe
  out.push(
    `rate limit: ${p.hellos} hellos back to back on one connection → ${Object.entries(p.counts).map(([k, v]) => `${v} ${k}`).join(", ")}; ` +
      `first rate_limited at hello ${p.first_rate_limited_at} (retry_after_ms ${p.retry_after_ms})`
  )
  return out.join("\n")
}

function printCold(result) {
  const out = []
  out.push(
    `(b) cold start — ${COLD} concurrent hellos for a backend not yet running (echo_backend.py --delay-ready ${DELAY_READY}), ` +
      `${COLD_REPS} run(s) per mode, medians; "ready" = the backend's socket first accepts a connection (polled every 1 ms by a worker thread)`
  )
  out.push("")
  out.push("| client mode | launches (admin delta) / launched:true | first hello → first hello.ok ms | … → launch decided | … → backend ready | ready → first reply ms | ready → p50 reply ms | ready → last reply ms | `overloaded` replies (max per client) | connect EAGAIN retries | max open conns (client side) | errors | target ready→last ≤ 50 ms |")
  out.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
  const label = {
    retry: `all ${COLD} at once, retry on \`overloaded\` after retry_after_ms`,
    window: `at most ${WINDOW} open at once (a new one as one closes)`,
    pipelined: `${Math.ceil(COLD / Math.ceil(COLD / WINDOW))} connections × ${Math.ceil(COLD / WINDOW)} hello frames each`
  }
  for (const s of result.summary) {
    out.push(
      `| ${label[s.mode]} | ${s.launches_delta.join(", ")} / ${s.launched_true.join(", ")} | ${fmt(s.first_hello_to_first_reply_ms, 1)} | ${fmt(s.first_hello_to_launch_decided_ms, 1)} | ` +
        `${fmt(median(result.runs.filter((r) => r.mode === s.mode).map((r) => r.first_hello_to_ready_ms)), 1)} | ${fmt(s.ready_to_first_reply_ms, 1)} | ` +
        `${fmt(s.ready_to_p50_reply_ms, 1)} | ${fmt(s.ready_to_last_reply_ms, 1)} (${s.ready_to_last_each.map((x) => fmt(x, 0)).join(", ")}) | ${s.overloaded_replies} (${s.max_overloaded_per_client}) | ${s.connect_retries} | ${s.max_open_connections} | ${s.errors} | ${s.met ? "met" : "**not met**"} |`
    )
  }
  out.push("")
  out.push(
    `backend's own start (spawn → socket accepts, median of ${OWN_START_RUNS}): ${fmt(result.own_start_median_ms, 1)} ms ` +
      `(${result.own_start_ms.map((x) => x.toFixed(1)).join(", ")}); first hello → hello.ok minus own start: ` +
      result.summary.map((s) => `${s.mode} ${fmt(s.first_hello_minus_own_start_ms, 1)} ms`).join(", ")
  )
  return out.join("\n")
}

async function main() {
  if (!fs.existsSync(corralJs)) die("dist/bin/corral.js is missing: run `npm run build` first")
  if (PIN) {
    const r = spawnSync("taskset", ["-a", "-pc", "1", String(process.pid)], { encoding: "utf8" })
    if (r.status !== 0) die(`taskset failed: ${r.stderr}`)
  }
  const python = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).stdout.trim()
  if (!python.startsWith("/")) die("cannot resolve python3 to an absolute interpreter path")
  const quiet = await waitQuietBeforeRun(WAIT_QUIET_S)
  if (quiet.waited_s > 0) log(`waited ${quiet.waited_s} s for the CPUs to be quiet (other load cpu0 ${(quiet.load.cpu0 * 100).toFixed(0)}%, cpu1 ${(quiet.load.cpu1 * 100).toFixed(0)}%)`)
  const started = Date.now()
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "cbb-"))
  const dataDir = path.join(tempDir, "d")
  const servicesDir = path.join(dataDir, "services")
  fs.mkdirSync(servicesDir, { recursive: true, mode: 0o700 })
  fs.chmodSync(servicesDir, 0o700)
  const writeDefinition = (name, args, extra = {}) => {
    const file = path.join(servicesDir, `${name}.service.json`)
    const definition = { name, default_version: VERSION, launch: { executable: python, args }, endpoint: { kind: "unix" }, ready_timeout_ms: 10_000, ...extra }
    fs.writeFileSync(file, `${JSON.stringify(definition, null, 2)}\n`, { mode: 0o600 })
    fs.chmodSync(file, 0o600)
  }
  // Warm backends: one per warm run (+ one for the ablation), each its own key and spawn budget;
  // idle_exit_sec lets the broker stop each one a few seconds after its run.
  const warmServices = []
  for (let i = 1; i <= REPS * 4 + 1; i++) {
    warmServices.push(`echo-warm-${i}`)
    writeDefinition(`echo-warm-${i}`, [echoBackend], { idle_exit_sec: 3 })
  }
  const coldServices = []
  for (let i = 1; i <= COLD_REPS * COLD_MODES.length; i++) {
    coldServices.push(`echo-cold-${i}`)
    writeDefinition(`echo-cold-${i}`, [echoBackend, "--delay-ready", String(DELAY_READY)])
  }
  // (c): a copy of Node per run (the broker hashes each executable once per file stamp, so a shared
  // one would be warm from the second run on), in a 0700 dir of ours, mode 0755: the trust rule passes.
  const bigServices = []
  if (PART === "big" || PART === "all") {
    const binDir = path.join(tempDir, "bin")
    fs.mkdirSync(binDir, { mode: 0o700 })
    for (let i = 1; i <= COLD_REPS; i++) {
      const executable = path.join(binDir, `node-${i}`)
      fs.copyFileSync(process.execPath, executable)
      fs.chmodSync(executable, 0o755)
      bigServices.push(`node-big-${i}`)
      writeDefinition(`node-big-${i}`, ["-e", nodeEchoBackend], { launch: { executable, args: ["-e", nodeEchoBackend] } })
    }
  }

  log(`bench/broker: starting the host (data dir ${dataDir}; backends: ${python} ${echoBackend})`)
  const host = await startHost(dataDir)
  const result = {
    machine: {
      date: new Date(started).toISOString(),
      command: `node bench/broker.mjs ${argv.join(" ")}`.trim(),
      nproc: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? "?",
      node: process.version,
      python,
      loadavg_start: os.loadavg().map((x) => x.toFixed(2)).join(" "),
      waited_for_quiet_s: quiet.waited_s,
      pinned: PIN
    },
    settings: { hellos: HELLOS, reps: REPS, clients: CLIENTS, cold: COLD, cold_reps: COLD_REPS, cold_modes: COLD_MODES, window: WINDOW, delay_ready_s: DELAY_READY }
  }
  try {
    if (PART === "warm" || PART === "all") {
      log("bench/broker: (a) warm hellos")
      result.warm = await warmBench(host, warmServices)
    }
    if (PART === "cold" || PART === "all") {
      log("bench/broker: (b) cold start")
      result.cold = await coldBench(host, dataDir, python, coldServices)
    }
    if (PART === "big" || PART === "all") {
      log(`bench/broker: (c) cold start, ${BIG} hellos, ~95 MB executable`)
      result.big = await bigBench(host, dataDir, bigServices)
    }
    result.final_status = await admin(host.socketPath)
  } finally {
    await stopChild(host.proc, 10_000)
  }
  result.machine.loadavg_end = os.loadavg().map((x) => x.toFixed(2)).join(" ")
  result.machine.elapsed_s = Math.round((Date.now() - started) / 1000)

  const text = []
  text.push(`# bench/broker.mjs — ${result.machine.date}, ${result.machine.command}`)
  text.push(`node ${process.version}, ${result.machine.nproc} CPUs (${result.machine.cpu}); host + backends on CPU 0, client on CPU 1: ${PIN}; load ${result.machine.loadavg_start} → ${result.machine.loadavg_end}; ${result.machine.elapsed_s} s`)
  text.push("")
  if (result.warm) text.push(printWarm(result.warm), "")
  if (result.cold) text.push(printCold(result.cold), "")
  if (result.big) text.push(printBig(result.big), "")
  const c = result.final_status?.counters
  if (c !== undefined) text.push(`broker counters at the end: ${JSON.stringify({ hellos: c.hellos, launches: c.launches, coalesced_waits: c.coalesced_waits, launch_failures: c.launch_failures, rejects: c.rejects })}`, "")
  process.stdout.write(`${text.join("\n")}\n`)
  if (JSON_OUT !== undefined) {
    fs.writeFileSync(JSON_OUT, `${JSON.stringify(result, null, 2)}\n`)
    log(`bench/broker: wrote ${JSON_OUT}`)
  }
}

main()
  .then(() => {
    clearTimeout(watchdog)
    removeTemp()
  })
  .catch((error) => {
    process.stderr.write(`bench/broker: ${error.stack ?? error}\n`)
    killAllNow()
    removeTemp()
    clearTimeout(watchdog)
    process.exitCode = 1
  })
