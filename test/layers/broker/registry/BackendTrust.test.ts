import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import type { ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"
import type { LoopbackPorts } from "../../../../src/services/system/LoopbackPorts.js"
import { makeRegistryCase, type RegistryCase, registryFor } from "../../../support/brokerRegistry.js"
import { otherUser } from "../../../support/otherUser.js"

// Short base path: unix socket paths must stay under 108 bytes.
const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cbt-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const other = otherUser()
const noOther = "skip" in other ? other.skip : undefined
if (noOther !== undefined) console.log(`skipping the other-user broker trust tests: ${noOther}`)

const live = <A, E>(effect: Effect.Effect<A, E, ProcessLauncher | LoopbackPorts | Scope.Scope>) =>
  effect.pipe(Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive)))

/**
 * Writes `<dir>/run.sh` (mode `mode`): it records that it ran in `<case>/ran`, then runs the echo
 * backend, so a launch that should have been refused leaves a mark, and a trusted one works.
 */
const writeLauncher = (c: RegistryCase, dir: string, mode: number, interpreter = "/bin/sh") => {
  Fs.mkdirSync(dir, { recursive: true })
  const script = Path.join(dir, "run.sh")
  Fs.writeFileSync(script, `#!${interpreter}\necho ran >> ${Path.join(c.dir, "ran")}\nexec ${c.backend} "$@"\n`)
  Fs.chmodSync(script, mode)
  return script
}

const ran = (c: RegistryCase) => Fs.existsSync(Path.join(c.dir, "ran"))

/** Acquires `service`: it must fail with `launch_failed`, nothing launched, nothing run. Returns the message. */
const refused = (c: RegistryCase, service: string) =>
  Effect.gen(function*() {
    const registry = yield* registryFor(c)
    const error = yield* Effect.flip(registry.acquire(service))
    expect(error.code).toBe("launch_failed")
    expect((yield* registry.counters).launches).toBe(0)
    expect(ran(c)).toBe(false)
    return error.message
  })

describe("the broker runs nothing another user could have written", () => {
  it.scopedLive("refuses an executable writable by others (mode 0777), and runs it once it is 0755", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      const script = writeLauncher(c, Path.join(c.dir, "bin"), 0o777)
      c.define("echo", { launch: { executable: script } })
      const message = yield* refused(c, "echo")
      expect(message).toBe(
        `refusing to run ${script} (${Path.join(c.servicesDir, "echo.service.json")}: launch.executable): ` +
          `${script}: writable by others (mode 0777); chmod go-w ${script}`
      )
      Fs.chmodSync(script, 0o755)
      const registry = yield* registryFor(c)
      expect((yield* registry.acquire("echo")).launched).toBe(true)
      expect(ran(c)).toBe(true)
    })))

  it.scopedLive("refuses an executable in a directory writable by others (mode 0777)", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      const shared = Path.join(c.dir, "shared")
      const script = writeLauncher(c, shared, 0o755)
      Fs.chmodSync(shared, 0o777)
      c.define("echo", { launch: { executable: script } })
      expect(yield* refused(c, "echo")).toContain(`${script}: in ${shared}, which is writable by others (mode 0777); chmod go-w ${shared}`)
    })))

  it.scopedLive("refuses an executable directly in a sticky shared directory like /tmp (mode 1777)", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      const sticky = Path.join(c.dir, "tmp")
      const script = writeLauncher(c, sticky, 0o755)
      Fs.chmodSync(sticky, 0o1777)
      c.define("echo", { launch: { executable: script } })
      expect(yield* refused(c, "echo")).toContain(`${script}: in ${sticky}, which is writable by others (mode 1777)`)
    })))

  it.scopedLive("refuses a script whose #! interpreter others can write", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      const interpreter = Path.join(c.dir, "interp", "sh")
      Fs.mkdirSync(Path.dirname(interpreter))
      Fs.copyFileSync(Fs.realpathSync("/bin/sh"), interpreter)
      Fs.chmodSync(interpreter, 0o777)
      const script = writeLauncher(c, Path.join(c.dir, "bin"), 0o755, interpreter)
      c.define("echo", { launch: { executable: script } })
      expect(yield* refused(c, "echo")).toContain(`${script}: its #! interpreter ${interpreter}: writable by others (mode 0777)`)
    })))

  it.scopedLive.skipIf(noOther !== undefined)("refuses an executable owned by another user", () =>
    live(Effect.gen(function*() {
      if ("skip" in other) return
      const c = makeRegistryCase(root)
      const script = writeLauncher(c, Path.join(c.dir, "bin"), 0o755)
      Fs.chownSync(script, other.uid, other.gid)
      c.define("echo", { launch: { executable: script } })
      expect(yield* refused(c, "echo")).toContain(`${script}: owned by uid ${other.uid}`)
    })))

  it.scopedLive.skipIf(noOther !== undefined)("refuses a definition symlinked into another user's directory", () =>
    live(Effect.gen(function*() {
      if ("skip" in other) return
      const c = makeRegistryCase(root)
      const script = writeLauncher(c, Path.join(c.dir, "bin"), 0o755)
      c.define("echo", { launch: { executable: script } })
      const home = Path.join(c.dir, "home-other")
      Fs.mkdirSync(home, { mode: 0o755 })
      Fs.chownSync(home, other.uid, other.gid)
      const theirs = Path.join(home, "svc.service.json")
      Fs.renameSync(Path.join(c.servicesDir, "echo.service.json"), theirs)
      Fs.chownSync(theirs, other.uid, other.gid)
      const link = Path.join(c.servicesDir, "echo.service.json")
      Fs.symlinkSync(theirs, link)
      const message = yield* refused(c, "echo")
      expect(message).toContain(`service definition refused: ${link} (-> ${theirs}): in ${home}, which is owned by uid ${other.uid}`)
    })))
})
