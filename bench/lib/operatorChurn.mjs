// The soak's operator: every `everyMs` one action, in turn — a restart through the control API, a
// restart through the CLI (`corral restart --wait`), a reload through the CLI after changing an
// operator fragment (Dator's quota window flips, so the reload has something to apply), and a reload
// through the control API. CLI runs are tracked children with a deadline.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { stopChild, track } from "./children.mjs"
import { corralJs } from "./corralHost.mjs"

/** Runs `corral <args> --data-dir dataDir`; resolves `{ code, out }` within `timeoutMs` (then SIGTERM/SIGKILL). */
const cli = async (dataDir, args, timeoutMs = 40_000) => {
  const proc = spawn(process.execPath, [corralJs, ...args, "--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] })
  const exited = track(proc, `corral ${args[0]}`)
  let out = ""
  proc.stdout.on("data", (c) => (out = (out + c).slice(-2000)))
  proc.stderr.on("data", (c) => (out = (out + c).slice(-2000)))
  const timer = setTimeout(() => stopChild(proc, 2_000), timeoutMs)
  const { code, signal } = await exited
  clearTimeout(timer)
  return { code: code ?? signal, out }
}

/** Starts the churn; `stop()` resolves after the action in progress. `actions`: what was done, with outcomes. */
export const startOperatorChurn = ({ dataDir, control, components, everyMs, log }) => {
  const actions = {}
  let running = true
  const wake = new AbortController()
  let turn = 0
  let window = 60
  const note = (name, ok) => {
    actions[name] ??= { ok: 0, failed: 0 }
    actions[name][ok ? "ok" : "failed"]++
  }
  const fragment = path.join(dataDir, "config", "60-soak.json")
  const steps = [
    async (id) => {
      const r = await control.post(`/v1/components/${id}/restart`, undefined, 30_000)
      note("restart (control API)", r.status === 200 || r.status === 202)
    },
    async (id) => {
      const r = await cli(dataDir, ["restart", "--wait", "--timeout", "30", id])
      if (r.code !== 0) log(`  corral restart ${id}: exit ${r.code}: ${r.out.trim().slice(-300)}`)
      note("restart --wait (CLI)", r.code === 0)
    },
    async () => {
      window = window === 60 ? 61 : 60
      fs.writeFileSync(fragment, `${JSON.stringify({ modules: { dator: { quota: { per_subject: 100_000_000, window_sec: window } } } })}\n`)
      const r = await cli(dataDir, ["reload", "--json"])
      if (r.code !== 0) log(`  corral reload: exit ${r.code}: ${r.out.trim().slice(-300)}`)
      note("reload after a config change (CLI)", r.code === 0)
    },
    async () => {
      const r = await control.post("/v1/reload", undefined, 30_000)
      note("reload (control API)", r.status === 200)
    }
  ]
  const done = (async () => {
    while (running) {
      // Aborted by stop(): the churn ends without waiting out its interval.
      await sleep(everyMs, undefined, { signal: wake.signal }).catch(() => {})
      if (!running) break
      const step = steps[turn % steps.length]
      await step(components[Math.floor(turn / steps.length) % components.length])
      turn++
    }
  })()
  return {
    actions,
    stop: async () => {
      running = false
      wake.abort()
      await done
    }
  }
}
