/**
 * `launch.env_file` is checked at each launch, as the executable is: a file that others can write (and so
 * set `LD_PRELOAD` or `PYTHONPATH` for the module) is refused, the component `failed` with a message naming
 * the file and never a value, and nothing launched (simulated processes, TestClock).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { awaitPhase, configOf, simulatedComponent, simulatedSupervisor } from "../../../support/simulatedSupervisor.js"

const quiet = Logger.replace(Logger.defaultLogger, Logger.make(() => {}))

describe("env_file trust at launch", () => {
  it.scoped("an env_file made writable by others after the config loaded fails the launch; fixed, the next start runs", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-envtrust-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const envFile = Path.join(dir, "module.env")
      Fs.writeFileSync(envFile, "LD_PRELOAD=/tmp/evil-s3cret.so\n", { mode: 0o600 })
      Fs.chmodSync(envFile, 0o666)
      const { supervisor, control, trace } = yield* simulatedSupervisor(configOf({
        "sim.one": { ...simulatedComponent, launch: { ...simulatedComponent.launch, env_file: envFile } }
      }))
      yield* supervisor.start("sim.one")
      const failed = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(failed.last_error).toBe(
        `components.sim.one: launch.env_file: refusing an env file others could change (it sets the module's environment): ` +
          `${envFile}: writable by others (mode 0666); chmod go-w ${envFile}`
      )
      expect(yield* control.launches).toEqual([])
      expect(JSON.stringify(yield* trace)).not.toContain("s3cret")

      Fs.chmodSync(envFile, 0o600)
      yield* supervisor.start("sim.one")
      const launched = yield* control.nextLaunch
      expect(launched.spec.env["LD_PRELOAD"]).toBe("/tmp/evil-s3cret.so")
      yield* awaitPhase(supervisor, "sim.one", "ready")
    }).pipe(Effect.provide(quiet)))
})
