// The fault campaign's verdict and its printed report (bench/faults.mjs): the invariants, each with
// what was seen, and tables in Markdown so a run can be pasted into bench/README.md as it is.
import { totals } from "./loadLoop.mjs"

const lostIn = (outcomes = {}) => Object.entries(outcomes).filter(([k]) => k.startsWith("lost:")).reduce((a, [, v]) => a + v, 0)
const mb = (bytes) => (bytes / 1_048_576).toFixed(1)
const counts = (o) => Object.entries(o ?? {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} ${k}`).join(", ") || "–"

/** The invariants of a campaign `report`: `[{ name, ok, seen }]`. */
export const faultInvariants = (r) => {
  const out = []
  const check = (name, ok, seen) => out.push({ name, ok: Boolean(ok), seen })
  const a = r.arca
  check(
    "every acknowledged Arca record is a row with that record id; no envelope stored twice",
    a.error === undefined && a.missing.length === 0 && a.mismatched.length === 0 && a.conflicts.length === 0 && a.duplicates.length === 0,
    a.error ?? `${a.acknowledged} acknowledged, ${a.rows} rows, ${a.missing.length} missing, ${a.mismatched.length} under another id, ${a.conflicts.length} conflicting, ${a.duplicates.length} duplicated`
  )
  check("no process left behind", r.processes.left_behind.length === 0, `${r.processes.seen} seen, ${r.processes.left_behind.length} left: ${JSON.stringify(r.processes.left_behind).slice(0, 300)}`)
  check("the host lived until stopped and stopped on SIGTERM", r.host.died === null && r.host.stop.how === "SIGTERM", `died: ${JSON.stringify(r.host.died)}, stop: ${r.host.stop.how} in ${r.host.stop.ms} ms`)
  const lost = Object.entries(r.invocations.by_phase).filter(([p]) => p !== "fd-exhaustion").map(([p, o]) => [p, lostIn(o)]).filter(([, n]) => n > 0)
  check("every invocation answered (outside descriptor exhaustion)", lost.length === 0, lost.length === 0 ? "none lost" : lost.map(([p, n]) => `${n} in ${p}`).join(", "))
  const probes = Object.entries(r.operator.probes).filter(([p]) => p !== "fd-exhaustion" && p !== "final").filter(([, v]) => v.failed > 0)
  check("operator probes answered in every phase but descriptor exhaustion", probes.length === 0, probes.length === 0 ? "all answered" : probes.map(([p, v]) => `${p}: ${v.failed} failed (${counts(v.errors)})`).join("; "))
  const chaos = r.phases.chaos
  if (chaos !== undefined) {
    const bad = Object.entries(chaos.modes).filter(([, m]) => m.silent_pass > 0 || lostIn(m.outcomes) > 0 || m.max_ms > chaos.request_timeout_ms + 3_000)
    check("a misbehaving module is a typed failure: never a silent allow, never a hang", bad.length === 0, bad.length === 0 ? "all modes" : bad.map(([k, m]) => `${k}: ${m.silent_pass} silent, max ${m.max_ms} ms, ${counts(m.outcomes)}`).join("; "))
  }
  const fz = r.phases.fuzz
  if (fz !== undefined) {
    const failed = Object.values(fz.hello_after_fuzz.failed).reduce((x, y) => x + y, 0)
    check("the broker answers valid hellos between fuzzed frames", failed === 0 && fz.hello_after_fuzz.ok > 0, `${fz.hello_after_fuzz.ok} ok, ${failed} failed ${counts(fz.hello_after_fuzz.failed)}`)
  }
  const fd = r.phases["fd-exhaustion"]
  if (fd !== undefined && fd.skipped === undefined) check("recovered from descriptor exhaustion within 30 s", fd.recovered_ms !== null, `recovered in ${fd.recovered_ms} ms; last ${JSON.stringify(fd.last_checks)}`)
  const f = r.final_check
  check("at the end every component is ready, ingress allows, a hello is ok", f.invoke === "200 allow" && f.hello === "hello.ok" && f.components.every((c) => c.phase === "ready"), JSON.stringify(f))
  return out
}

/** Prints the report (Markdown tables) to stdout. */
export const printFaultReport = (r) => {
  const o = []
  const m = r.machine
  o.push(`# bench/faults.mjs — ${m.date}, \`${m.command}\` (seed ${m.seed}, ${m.elapsed_s} s, node ${m.node})`, "")
  o.push(`phases reached: ${r.phases_reached.map((p) => `${p.phase} ${p.seconds} s`).join(" → ")}`, "")
  o.push("| phase | invocations (ingress) by outcome | hellos by outcome | operator probes ok/failed (max ms) |", "|---|---|---|---|")
  for (const { phase } of [...r.phases_reached, { phase: "final" }]) {
    const p = r.operator.probes[phase]
    o.push(`| ${phase} | ${counts(r.invocations.by_phase[phase])} | ${counts(r.hellos.by_phase[phase])} | ${p === undefined ? "–" : `${p.ok}/${p.failed} (${Math.round(p.max_ms)})`} |`)
  }
  const inv = totals(r.invocations.by_phase)
  o.push("", `invocations: ${r.invocations.attempted} attempted; ${Object.entries(inv).filter(([k]) => !k.startsWith("lost:")).reduce((a, [, v]) => a + v, 0)} answered (${counts(inv)}); failed ones retried once with the same envelope id: ${counts(r.invocations.retried_same_id)}`)
  o.push(`hellos: ${r.hellos.attempted} attempted (${counts(totals(r.hellos.by_phase))})`, "")
  const ph = r.phases
  if (ph.sigkill) o.push(`SIGKILL: ${counts(ph.sigkill.signals)}`)
  if (ph.sigstop) o.push(`SIGSTOP/SIGCONT: ${counts(ph.sigstop.signals)}`)
  if (ph.chaos) {
    o.push("", `chaos module (request_timeout_ms ${ph.chaos.request_timeout_ms}):`, "", "| mode | invocations | host's answers | slowest ms | silent allow |", "|---|---:|---|---:|---:|")
    for (const [mode, x] of Object.entries(ph.chaos.modes)) o.push(`| ${mode} | ${x.n} | ${counts(x.outcomes)} | ${x.max_ms} | ${x.silent_pass} |`)
  }
  if (ph.fuzz) {
    o.push("", `fuzzed broker frames: ${ph.fuzz.cases} cases; valid hellos in between: ${ph.fuzz.hello_after_fuzz.ok} ok, failed ${counts(ph.fuzz.hello_after_fuzz.failed)}`, "", "| case | broker's reply |", "|---|---|")
    for (const [kind, x] of Object.entries(ph.fuzz.by_kind).sort()) o.push(`| ${kind} | ${counts(x)} |`)
  }
  const flood = (f) => `${f.connected}/${f.wanted} connected, ${f.closed_by_server} closed by the server (${f.answered_before_close} after writing an answer), connect failures ${counts(f.connect_failed)}`
  if (ph.flood) o.push("", `idle flood — control: ${flood(ph.flood.control)}; broker: ${flood(ph.flood.broker)}`)
  if (ph.slowloris) o.push("", ph.slowloris.skipped ? `slowloris: skipped (${ph.slowloris.skipped})` : `slowloris: \`${ph.slowloris.argv.join(" ")}\` → ${JSON.stringify(ph.slowloris.summary)}`)
  const fd = ph["fd-exhaustion"]
  if (fd) {
    o.push(
      "",
      fd.skipped
        ? `descriptor exhaustion: skipped (${fd.skipped})`
        : `descriptor exhaustion: soft nofile ${fd.limit_before.soft} → ${fd.lowered_soft} (open before ${fd.fds_before}, peak ${fd.peak_fds}); flood control ${flood(fd.flood.control)}; broker ${flood(fd.flood.broker)}; recovered in ${fd.recovered_ms ?? "never"} ms after the limit was restored`
    )
  }
  o.push("", "| component | phases reached (lifecycle trace) | restarts by reason | operator restarts of `failed` |", "|---|---|---|---:|")
  for (const [id, phases] of Object.entries(r.lifecycle.phases)) o.push(`| ${id} | ${phases.join(", ")} | ${counts(r.lifecycle.restarts[id])} | ${r.operator.restarts_of_failed[id] ?? 0} |`)
  const a = r.arca
  o.push("", a.error ? `Arca: ${a.error}` : `Arca: ${a.acknowledged} acknowledged records, ${a.rows} rows in SQLite; ${a.missing.length} missing, ${a.mismatched.length} under another record id, ${a.duplicates.length} duplicated envelope ids, ${a.unacknowledged} rows no answer acknowledged`)
  o.push(`processes: ${r.processes.seen} seen below the host, ${r.processes.left_behind.length} left behind`)
  o.push(`host: descriptors ${r.host.start.fds} → ${r.host.end.fds}, RSS ${mb(r.host.start.rss)} → ${mb(r.host.end.rss)} MiB; stopped by ${r.host.stop.how} in ${r.host.stop.ms} ms`)
  o.push("", "| invariant | verdict | seen |", "|---|---|---|")
  for (const i of r.invariants) o.push(`| ${i.name} | ${i.ok ? "pass" : "**FAIL**"} | ${i.seen.replaceAll("|", "\\|")} |`)
  process.stdout.write(`${o.join("\n")}\n`)
}
