// `corral up` for the host and broker benches: starts the built host (dist/) on a data dir and waits
// for its `{"event":"up"}` line. The child is tracked (./children.mjs), so it is stopped by its pid.
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { awaitLine, track } from "./children.mjs"

/** The built CLI; `npm run build` writes it. */
export const corralJs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/bin/corral.js")

/**
 * Runs `corral up --data-dir dataDir` behind `commandPrefix` (e.g. `taskset -c 0`) and resolves
 * `{ proc, up, stderr }` once it printed its `up` event (30 s at most). BENCH_HOST_NODE_FLAGS (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/p") goes to the host's node, for diagnosis. `detached`: the host leads
 * its own session and process group (the fault campaign tells its processes from the bench's that way).
 */
export const startCorralHost = async ({ dataDir, commandPrefix, detached = false }) => {
  const nodeFlags = (process.env.BENCH_HOST_NODE_FLAGS ?? "").split(" ").filter((f) => f.length > 0)
  const argvHost = [...commandPrefix, process.execPath, ...nodeFlags, corralJs, "up", "--data-dir", dataDir]
  const proc = spawn(argvHost[0], argvHost.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: process.env, detached })
  const exited = track(proc, "corral host")
  let stderrTail = ""
  proc.stderr.on("data", (c) => {
    stderrTail = (stderrTail + c.toString("utf8")).slice(-4000)
  })
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
    timeoutError: () => new Error(`host not up within 30 s; stderr: ${stderrTail}`),
    exitError: (code, signal) => new Error(`host exited (${code ?? signal}) before it was up; stderr: ${stderrTail}`)
  })
  proc.stdout.resume()
  return { proc, up, stderr: () => stderrTail }
}
