// Tiny flag parser shared by the bench servers: `--name value` pairs, with env fallbacks.
export const flag = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1]
  const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`]
  return env !== undefined && env !== "" ? env : fallback
}

export const intFlag = (name, fallback) => {
  const raw = flag(name, undefined)
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got ${raw}\n`)
    process.exit(2)
  }
  return n
}

/** Parses `ms` from a request URL's query; NaN when absent or malformed. */
export const sleepMsOf = (url) => {
  const q = url.indexOf("?")
  if (q === -1) return 0
  const ms = Number(new URLSearchParams(url.slice(q + 1)).get("ms") ?? "0")
  return Number.isInteger(ms) && ms >= 0 && ms <= 600_000 ? ms : Number.NaN
}
