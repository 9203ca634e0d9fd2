#!/usr/bin/env node
/**
 * `npm run simulate -- [--seed N] [--schedules N] [--path P] [--max-steps N]`: runs the deterministic
 * simulation of the host (test/simulation/simulation.test.ts) under vitest with those knobs (no
 * `--seed`: a random one; `npm test` always uses seed 7). A failing run prints the shrunk schedule and
 * the `--seed`/`--path` that replay it; the same seed and schedule count search the same schedules again.
 */
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import * as Path from "node:path"

const usage = "usage: npm run simulate -- [--seed N] [--schedules N] [--path P] [--max-steps N]"
const root = Path.resolve(import.meta.dirname, "..")
const options = { "--seed": "SIM_SEED", "--schedules": "SIM_SCHEDULES", "--path": "SIM_PATH", "--max-steps": "SIM_MAX_STEPS" }

const env = { ...process.env }
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  const [flag, inline] = args[i].split("=", 2)
  if (flag === "--help" || flag === "-h") {
    console.log(usage)
    process.exit(0)
  }
  const name = options[flag]
  if (name === undefined) {
    console.error(`simulate: unknown option ${JSON.stringify(args[i])}\n${usage}`)
    process.exit(2)
  }
  const value = inline ?? args[++i]
  if (value === undefined || value === "") {
    console.error(`simulate: ${flag} needs a value\n${usage}`)
    process.exit(2)
  }
  if (flag !== "--path" && !/^-?\d+$/.test(value)) {
    console.error(`simulate: ${flag} takes an integer, got ${JSON.stringify(value)}`)
    process.exit(2)
  }
  env[name] = value
}

// Without --seed, a fresh search: the seed is drawn here and printed with the result.
if (env.SIM_SEED === undefined) env.SIM_SEED = String(Math.floor(Math.random() * 2 ** 31))

const vitest = Path.join(Path.dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs")
const run = spawnSync(process.execPath, [vitest, "run", "test/simulation/simulation.test.ts"], { cwd: root, env, stdio: "inherit" })
process.exit(run.status ?? 1)
