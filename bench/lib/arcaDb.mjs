// Arca's SQLite archive, read with python3's sqlite3 (read-only URI, so the module's own writer is
// not disturbed): every row's envelope id and record id, and the duplicates among envelope ids.
import { spawnSync } from "node:child_process"

const reader = `
import json, sqlite3, sys
conn = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=10)
rows = conn.execute("SELECT envelope_id, id FROM records").fetchall()
dups = conn.execute("SELECT envelope_id, COUNT(*) FROM records GROUP BY envelope_id HAVING COUNT(*) > 1").fetchall()
print(json.dumps({"rows": rows, "duplicates": dups}))
`

/** `{ rows: Map envelope id → record id, count, duplicates: [[id, n]] }`, or `{ error }`. */
export const readArchive = (dbPath) => {
  const r = spawnSync("python3", ["-c", reader, dbPath], { encoding: "utf8", timeout: 30_000, maxBuffer: 256 * 1024 * 1024 })
  if (r.status !== 0) return { error: `python3 sqlite3 on ${dbPath}: ${r.error?.message ?? r.stderr.trim().slice(-400)}` }
  const parsed = JSON.parse(r.stdout)
  return { rows: new Map(parsed.rows), count: parsed.rows.length, duplicates: parsed.duplicates }
}

/**
 * Acknowledged records (`acks`: envelope id → record id, from the host's answers) against the
 * archive: `missing` (acknowledged, no row), `mismatched` (row under another record id),
 * `conflicts` (one envelope acknowledged with two record ids), `unacknowledged` (rows no answer named).
 */
export const compareAcks = (acks, archive) => {
  const missing = []
  const mismatched = []
  const conflicts = []
  for (const [id, recordId] of acks) {
    if (id.endsWith("#conflict")) {
      conflicts.push(id)
      continue
    }
    const row = archive.rows.get(id)
    if (row === undefined) missing.push(id)
    else if (row !== recordId) mismatched.push({ id, acknowledged: recordId, stored: row })
  }
  let unacknowledged = 0
  for (const id of archive.rows.keys()) if (!acks.has(id)) unacknowledged++
  return { acknowledged: acks.size - conflicts.length, rows: archive.count, missing, mismatched, conflicts, duplicates: archive.duplicates, unacknowledged }
}
