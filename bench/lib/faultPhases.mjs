// The phases of the fault campaign (bench/faults.mjs), one function each. Each runs for `ms` against
// the host in `ctx` ({ host, control, watch, rng, log }) while the campaign's background load goes on,
// and resolves what it did and saw. Every wait is bounded by the phase's own duration plus a deadline.
import { spawnSync } from "node:child_process"
import { setTimeout as sleep } from "node:timers/promises"
import { hello, rawExchange } from "./brokerClient.mjs"
import { CHAOS_REQUEST_TIMEOUT_MS } from "./campaignHost.mjs"
import { exchange } from "./controlClient.mjs"
import { fuzzCase } from "./frameFuzz.mjs"
import { outcomeOf } from "./hookTraffic.mjs"
import { openIdleFlood } from "./idleFlood.mjs"
import { startLoop } from "./loadLoop.mjs"
import { nofileLimit, openFds } from "./procTree.mjs"
import { pauseModule, killModule } from "./signalFaults.mjs"
import { ensureSlowhttptest, runSlowloris } from "./slowloris.mjs"

const routable = (c) => Number.isInteger(c.pid) && (c.phase === "ready" || c.phase === "degraded")

/** Nothing injected: the load alone. */
export const baseline = async (_ctx, ms) => {
  await sleep(ms)
  return {}
}

/** SIGKILLs a random routable module every 2–4 s. */
export const sigkill = async ({ host, watch, rng, log }, ms) => {
  const end = Date.now() + ms
  const done = []
  while (Date.now() < end) {
    const targets = watch.latest().filter(routable)
    if (targets.length > 0) {
      const what = killModule(host.proc.pid, rng.pick(targets))
      if (what !== undefined) {
        done.push(what.split(" (")[0])
        log(`  ${what}`)
      }
    }
    await sleep(Math.min(2_000 + rng.int(2_000), Math.max(0, end - Date.now())))
  }
  return { signals: tally(done) }
}

/** SIGSTOPs a random routable module (and its processes) for 1.5–3.5 s, then SIGCONT; 1 s apart. */
export const sigstop = async ({ host, watch, rng, log }, ms) => {
  const end = Date.now() + ms
  const done = []
  while (Date.now() + 1_500 < end) {
    const targets = watch.latest().filter(routable)
    if (targets.length > 0) {
      const what = await pauseModule(host.proc.pid, rng.pick(targets), Math.min(1_500 + rng.int(2_000), end - Date.now()))
      if (what !== undefined) {
        done.push(what.split(" (")[0])
        log(`  ${what}`)
      }
    }
    await sleep(Math.min(1_000, Math.max(0, end - Date.now())))
  }
  return { signals: tally(done) }
}

/** The chaos module's misbehaviours, and whether an `allow` would be a silent pass. */
export const CHAOS_MODES = ["ok", "garbage", "bad_decision", "too_much", "stall", "close", "short"]

/**
 * Hook `chaos` invoked by 2 workers, each envelope asking the chaos module for a random misbehaviour.
 * Per mode: outcomes, the slowest answer, and answers that passed a broken module off as `allow`.
 */
export const chaos = async ({ control, rng }, ms) => {
  const modes = {}
  let phaseCounter = 0
  const loop = startLoop({
    workers: 2,
    pauseMs: 50,
    phase: () => "chaos",
    action: async () => {
      const mode = rng.pick(CHAOS_MODES)
      const envelope = { id: `chaos-${++phaseCounter}`, hook: "chaos", subject: "chaos", payload: { mode, stall_s: 3 } }
      const r = await control.invoke("chaos", envelope, 15_000)
      const outcome = outcomeOf(r)
      const m = (modes[mode] ??= { n: 0, outcomes: {}, max_ms: 0, silent_pass: 0 })
      m.n++
      m.outcomes[outcome] = (m.outcomes[outcome] ?? 0) + 1
      m.max_ms = Math.max(m.max_ms, Math.round(r.ms))
      if (mode !== "ok" && outcome === "200 allow") m.silent_pass++
      return outcome
    }
  })
  await sleep(ms)
  await loop.stop()
  return { modes, request_timeout_ms: CHAOS_REQUEST_TIMEOUT_MS }
}

/**
 * Fuzzed frames on fresh broker connections, 8 at a time (each waits for its first reply, the
 * broker's close, or 1.5 s), and a valid hello after every batch: the broker must keep serving.
 */
export const fuzz = async ({ host, rng }, ms) => {
  const end = Date.now() + ms
  const byKind = {}
  const helloAfter = { ok: 0, failed: {} }
  let cases = 0
  while (Date.now() < end) {
    const batch = Array.from({ length: 8 }, () => fuzzCase(rng))
    const results = await Promise.all(batch.map((c) => rawExchange(host.brokerSocket, c.chunks, { timeoutMs: 1_500, pauseMs: c.pauseMs, expect: c.expect ?? 1 })))
    batch.forEach((c, i) => {
      const r = results[i]
      const what = r.frames.length > 0 ? r.frames.map((f) => f.code ?? f.type).join("+") : r.error ?? (r.timedOut ? "no reply in 1.5 s" : "closed, no reply")
      const k = (byKind[c.kind] ??= {})
      k[what] = (k[what] ?? 0) + 1
    })
    cases += batch.length
    const h = await hello(host.brokerSocket, "echo")
    if (h.ok) helloAfter.ok++
    else helloAfter.failed[h.code ?? h.error] = (helloAfter.failed[h.code ?? h.error] ?? 0) + 1
  }
  return { cases, by_kind: byKind, hello_after_fuzz: helloAfter }
}

/** 300 idle TCP connections to the control server and 300 to the broker socket, held for the phase. */
export const flood = async ({ host, control }, ms) => {
  const tcp = await openIdleFlood({ host: control.url.hostname, port: Number(control.url.port) }, 300)
  const unix = await openIdleFlood({ path: host.brokerSocket }, 300)
  await sleep(ms)
  const report = { control: tcp.report(), broker: unix.report() }
  tcp.release()
  unix.release()
  return report
}

/** slowhttptest (slow headers, 400 sockets) against the control server's /healthz for the phase. */
export const slowloris = async ({ control, log }, ms) => {
  const available = ensureSlowhttptest(log)
  if (!available.ok) {
    log(`  slowloris skipped: ${available.reason}`)
    await sleep(ms)
    return { skipped: available.reason }
  }
  return runSlowloris({ url: `${control.url.origin}/healthz`, seconds: Math.max(5, Math.round(ms / 1000)), connections: 400 })
}

/**
 * Lowers the host's soft RLIMIT_NOFILE (prlimit --pid) to its open descriptors + 24, floods it with
 * idle connections, holds for the phase, restores the limit, and times the recovery: /healthz 200,
 * an `ingress` invocation answered `allow` and a hello ok, within 30 s.
 */
export const fdExhaustion = async ({ host, control, log }, ms) => {
  const pid = host.proc.pid
  const limit = nofileLimit(pid)
  const before = openFds(pid)
  const soft = before + 24
  const set = (value) => spawnSync("prlimit", ["--pid", String(pid), `--nofile=${value}:${limit.hard === Infinity ? "unlimited" : limit.hard}`], { encoding: "utf8" })
  const lowered = set(soft)
  if (lowered.status !== 0) return { skipped: `prlimit failed: ${lowered.stderr.trim()}` }
  log(`  host soft nofile ${limit.soft} → ${soft} (open: ${before})`)
  const tcp = await openIdleFlood({ host: control.url.hostname, port: Number(control.url.port) }, 100)
  const unix = await openIdleFlood({ path: host.brokerSocket }, 100)
  let peakFds = before
  const end = Date.now() + ms
  while (Date.now() < end) {
    peakFds = Math.max(peakFds, openFds(pid))
    await sleep(200)
  }
  const flood = { control: tcp.report(), broker: unix.report() }
  tcp.release()
  unix.release()
  set(limit.soft === Infinity ? "unlimited" : limit.soft)
  const t0 = Date.now()
  let recovered
  const steps = {}
  while (Date.now() - t0 < 30_000) {
    const health = await exchange({ url: control.url, pathname: "/healthz", timeoutMs: 2_000 })
    steps.healthz = health.status ?? health.error
    const inv = await control.invoke("ingress", { id: `fd-recovery-${Date.now()}`, hook: "ingress", subject: "recovery", payload: {} }, 5_000)
    steps.invoke = outcomeOf(inv)
    const h = await hello(host.brokerSocket, "echo", 5_000)
    steps.hello = h.ok ? "hello.ok" : h.code ?? h.error
    if (health.status === 200 && steps.invoke === "200 allow" && h.ok) {
      recovered = Date.now() - t0
      break
    }
    await sleep(250)
  }
  return { limit_before: limit, lowered_soft: soft, fds_before: before, peak_fds: peakFds, flood, recovered_ms: recovered ?? null, last_checks: steps }
}

const tally = (items) => {
  const out = {}
  for (const x of items) out[x] = (out[x] ?? 0) + 1
  return out
}
