// Flag parsing shared by the bench drivers (run.mjs, host.mjs, broker.mjs): `--name value` pairs and
// bare switches. A bad value ends the process with exit code 2 and a message that names the flag.

/**
 * The flags of `argv`. `program` prefixes every error message ("bench", "bench/host", …); the
 * returned functions read flags on demand, so `--help` can be answered before any value is checked.
 */
export const parseArgs = (program, argv = process.argv.slice(2)) => {
  /** Prints `program: message` and exits 2 (a usage error). */
  const die = (message) => {
    process.stderr.write(`${program}: ${message}\n`)
    process.exit(2)
  }
  /** The value after `--name`, or `fallback` when the flag is absent. */
  const flag = (name, fallback) => {
    const i = argv.indexOf(`--${name}`)
    if (i === -1) return fallback
    const value = argv[i + 1]
    if (value === undefined || value.startsWith("--")) die(`--${name} needs a value`)
    return value
  }
  /** A numeric flag: finite, at least `min`, and an integer when `integer` is set. */
  const numFlag = (name, fallback, { min = 0, integer = false } = {}) => {
    const raw = flag(name, undefined)
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) die(`--${name}: bad value ${raw}`)
    return n
  }
  /** An integer flag of at least `min` (1 unless told). */
  const intFlag = (name, fallback, min = 1) => numFlag(name, fallback, { min, integer: true })
  /** Whether the bare switch `--name` is present. */
  const has = (name) => argv.includes(`--${name}`)
  /** With `--help` or `-h`: prints `usage` to stdout and exits 0. */
  const exitWithUsageIfAsked = (usage) => {
    if (argv.includes("--help") || argv.includes("-h")) {
      process.stdout.write(usage)
      process.exit(0)
    }
  }
  return { argv, die, flag, numFlag, intFlag, has, exitWithUsageIfAsked }
}
