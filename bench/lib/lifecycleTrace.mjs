// The host's lifecycle trace (trace/lifecycle.jsonl and its rotated files), summarised for the fault
// campaign and the soak: phases each component reached, and how often it went back to `starting`
// (every start after the first is a restart), by the reason the host gave.
import * as fs from "node:fs"
import * as path from "node:path"

/** `{ phases: { id: [phase] }, restarts: { id: { reason: n } }, transitions }` of the data dir. */
export const summariseLifecycle = (dataDir) => {
  const dir = path.join(dataDir, "trace")
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith("lifecycle.jsonl")).sort().reverse() : []
  const phases = {}
  const starts = {}
  const restarts = {}
  let transitions = 0
  for (const file of files) {
    for (const line of fs.readFileSync(path.join(dir, file), "utf8").split("\n")) {
      if (line.trim() === "") continue
      let t
      try {
        t = JSON.parse(line)
      } catch {
        continue
      }
      transitions++
      phases[t.component] ??= new Set()
      phases[t.component].add(t.to)
      if (t.to !== "starting") continue
      starts[t.component] = (starts[t.component] ?? 0) + 1
      if (starts[t.component] === 1) continue
      // "<what>; restart N of M in X ms" (Lifecycle.ts) is an automatic restart: keep <what>, drop the
      // counts; every other reason (operator restart, reload) up to its first digit or colon.
      const text = String(t.reason ?? "")
      const automatic = /^(.*); restart \d+ of \d+/.exec(text)
      const reason = automatic !== null ? `automatic, ${automatic[1]}` : text.split(/[:(\d]/)[0].trim() || "?"
      restarts[t.component] ??= {}
      restarts[t.component][reason] = (restarts[t.component][reason] ?? 0) + 1
    }
  }
  return { phases: Object.fromEntries(Object.entries(phases).map(([id, s]) => [id, [...s].sort()])), restarts, transitions }
}
