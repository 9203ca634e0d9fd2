// Crash → ready of a supervised module, minus the module's own start (issue 10, target ≤ 50 ms).
//
// usage: node bench/restart.mjs [--kills N=7] [--own-polls-ms N=1] [--python PATH] [--json out.json]   (after `npm run build`)
//
// Starts the built host (dist/bin/corral.js of the tree this file is in) with Dator as its only module, then
// N times: times Dator's own start (PYTHON dator.py --port P, alone: spawn → first 200 on /readyz, polled
// every --own-polls-ms; PYTHON is --python, default /usr/bin/python3: the interpreter the host runs for the
// module-restricted Dator on a root host, whose module user cannot run a pyenv shim under /root), waits until Dator has been up longer than stable_after_sec (so every crash is a
// first one, with the first restart backoff), SIGKILLs Dator (the pid the host reports) and reads the
// host's lifecycle trace for the `ready` record of the new run. Reports, median of N: kill → `ready` record
// (the trace's ms timestamps), the module's own start taken just before each kill, and their paired
// difference (the host's part of a restart, backoff included), with the backoff and the kill → `starting`
// record (the host noticing the crash) shown apart.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "./lib/args.mjs"
import { killAllNow, stopChild, stopChildrenOnExit, track } from "./lib/children.mjs"
import { controlOf } from "./lib/controlClient.mjs"
import { corralJs, startCorralHost } from "./lib/corralHost.mjs"
import { fmt, median } from "./lib/stats.mjs"

const { die, intFlag, numFlag, flag, exitWithUsageIfAsked } = parseArgs("bench/restart")
exitWithUsageIfAsked("usage: node bench/restart.mjs [--kills N=7] [--own-polls-ms N=1] [--python PATH] [--json out.json]\n")
const KILLS = intFlag("kills", 7)
const OWN_POLL_MS = numFlag("own-polls-ms", 1)
const JSON_OUT = flag("json", undefined)
const PYTHON = flag("python", fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3")
const STABLE_AFTER_SEC = 1
const TARGET_MS = 50

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const datorPy = path.join(root, "modules", "dator", "dator.py")
const log = (line) => process.stderr.write(`${line}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-bench-restart-"))
stopChildrenOnExit({ signals: ["SIGINT", "SIGTERM"], message: (signal) => `bench/restart: ${signal}, stopping\n`, cleanup: () => fs.rmSync(tempDir, { recursive: true, force: true }) })

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const readyzOnce = (port) =>
  new Promise((resolve) => {
    const request = http.get({ host: "127.0.0.1", port, path: "/readyz", agent: false, timeout: 1_000 }, (response) => {
      response.resume()
      response.on("end", () => resolve(response.statusCode === 200))
    })
    request.on("timeout", () => request.destroy())
    request.on("error", () => resolve(false))
  })

/** Dator alone: spawn → first 200 on /readyz (ms). */
const ownStart = async (dataDir) => {
  const port = await freePort()
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    CORRAL_MODULE_ID: "dator",
    CORRAL_COMPONENT_ID: "middleware.dator",
    CORRAL_MODULE_TOKEN: randomBytes(32).toString("hex"),
    CORRAL_DATA_DIR: dataDir
  }
  const t0 = performance.now()
  const proc = spawn(PYTHON, [datorPy, "--port", String(port)], { stdio: ["ignore", "ignore", "ignore"], env, cwd: tempDir })
  const exited = track(proc, "own-start dator")
  let dead = false
  exited.then(() => {
    dead = true
  })
  let ms
  while (!dead && performance.now() - t0 < 15_000) {
    if (await readyzOnce(port)) {
      ms = performance.now() - t0
      break
    }
    await sleep(OWN_POLL_MS)
  }
  await stopChild(proc, 3_000)
  if (ms === undefined) throw new Error("Dator alone never answered /readyz")
  return ms
}

const lifecycle = (dataDir) => {
  try {
    return fs.readFileSync(path.join(dataDir, "trace", "lifecycle.jsonl"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
  } catch {
    return []
  }
}

const datorView = async (control) => {
  const r = await control.components()
  return r.components?.find((c) => c.id === "middleware.dator")
}

async function main() {
  if (!fs.existsSync(corralJs)) die("dist/bin/corral.js is missing: run `npm run build` first")
  const dataDir = path.join(tempDir, "data")
  fs.mkdirSync(path.join(dataDir, "config"), { recursive: true })
  const fragment = {
    components: {
      "middleware.arca": { enabled: false },
      "middleware.dator": { restart_policy: { max_restarts: 100, window_sec: 60, stable_after_sec: STABLE_AFTER_SEC } }
    },
    hooks: { ingress: ["middleware.dator"] }
  }
  fs.writeFileSync(path.join(dataDir, "config", "50-bench.json"), `${JSON.stringify(fragment, null, 2)}\n`)
  const started = new Date()
  const host = await startCorralHost({ dataDir, commandPrefix: [] })
  const control = controlOf(dataDir)
  const kills = []
  try {
    for (let k = 0; k < KILLS; k++) {
      const roundStart = performance.now()
      const own = await ownStart(dataDir)
      await sleep(Math.max(0, STABLE_AFTER_SEC * 1000 + 150 - (performance.now() - roundStart)))
      // The host's first start of Dator runs alongside the first own start: wait for it (bounded).
      let view = await datorView(control)
      for (const until = Date.now() + 15_000; view?.phase !== "ready" && Date.now() < until; view = await datorView(control)) await sleep(20)
      if (view?.phase !== "ready" || view.pid === null) throw new Error(`Dator not ready before kill ${k + 1}: ${view?.phase}`)
      const seen = lifecycle(dataDir).length
      const killAt = Date.now()
      process.kill(view.pid, "SIGKILL")
      let ready
      let crash
      while (Date.now() - killAt < 15_000) {
        const events = lifecycle(dataDir).slice(seen).filter((e) => e.component === "middleware.dator")
        crash = events.find((e) => e.to === "starting")
        ready = events.find((e) => e.to === "ready")
        if (ready !== undefined || events.some((e) => e.to === "failed")) break
        await sleep(2)
      }
      if (ready === undefined) throw new Error(`no ready record within 15 s of kill ${k + 1}`)
      const restart = Date.parse(ready.at) - killAt
      const noticed = crash === undefined ? NaN : Date.parse(crash.at) - killAt
      const backoff = Number(/ in (\d+) ms/.exec(crash?.reason ?? "")?.[1] ?? NaN)
      kills.push({ restart_ms: restart, own_start_ms: own, host_part_ms: restart - own, noticed_ms: noticed, backoff_ms: backoff })
      log(`kill ${k + 1}: kill → ready ${restart} ms, own start ${own.toFixed(1)} ms, host part ${(restart - own).toFixed(1)} ms (noticed ${noticed} ms, backoff ${backoff} ms)`)
    }
  } finally {
    await stopChild(host.proc, 10_000)
  }
  const m = (key) => median(kills.map((k) => k[key]))
  const result = {
    date: started.toISOString(),
    command: `node bench/restart.mjs ${process.argv.slice(2).join(" ")}`.trim(),
    node: process.version,
    nproc: os.cpus().length,
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    kills,
    median_restart_ms: m("restart_ms"),
    median_own_start_ms: m("own_start_ms"),
    median_host_part_ms: m("host_part_ms"),
    median_host_part_without_backoff_ms: median(kills.map((k) => k.host_part_ms - k.backoff_ms)),
    median_noticed_ms: m("noticed_ms"),
    median_backoff_ms: m("backoff_ms"),
    target_ms: TARGET_MS
  }
  process.stdout.write(
    `bench/restart (${result.date}, ${KILLS} kills, load ${result.loadavg}): kill → ready ${fmt(result.median_restart_ms, 1)} ms, ` +
      `own start ${fmt(result.median_own_start_ms, 1)} ms, host part (paired) ${fmt(result.median_host_part_ms, 1)} ms ` +
      `(target ≤ ${TARGET_MS}: ${result.median_host_part_ms <= TARGET_MS ? "met" : "not met"}); of which backoff ${fmt(result.median_backoff_ms, 0)} ms, ` +
      `without it ${fmt(result.median_host_part_without_backoff_ms, 1)} ms; kill → noticed ${fmt(result.median_noticed_ms, 0)} ms\n`
  )
  if (JSON_OUT !== undefined) fs.writeFileSync(JSON_OUT, `${JSON.stringify(result, null, 2)}\n`)
}

main()
  .catch((error) => {
    log(`bench/restart: ${error.stack ?? error}`)
    killAllNow()
    process.exitCode = 1
  })
  .finally(() => fs.rmSync(tempDir, { recursive: true, force: true }))
