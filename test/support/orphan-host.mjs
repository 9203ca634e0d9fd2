// A stand-in host for the "children die with a SIGKILLed host" test: spawns the command given as a JSON
// argv (built by the launcher's own `wrapCommand`) the way the launcher does (detached, clean env),
// prints the child's pid, then waits to be killed.
import { spawn } from "node:child_process"

const [file, ...args] = JSON.parse(process.argv[2] ?? "[]")
const child = spawn(file, args, {
  detached: true,
  stdio: "ignore",
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }
})
child.once("spawn", () => process.stdout.write(`${child.pid}\n`))
child.once("error", (error) => {
  process.stderr.write(`${error.message}\n`)
  process.exit(1)
})
setInterval(() => undefined, 60_000)
