/**
 * The warm hello path reads no more of the filesystem than it must: the trust walks (an `lstat` per
 * path component) run once per changed file or per recheck period, not per hello — while a file
 * swapped for one others can write is still refused before anything of it runs.
 */
import { createRequire, syncBuiltinESMExports } from "node:module"
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
import { makeRegistryCase, registryFor } from "../../../support/brokerRegistry.js"
import { waitFor } from "../../../support/procfs.js"

// Short base path: unix socket paths must stay under 108 bytes.
const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cbl-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const live = <A, E>(effect: Effect.Effect<A, E, ProcessLauncher | LoopbackPorts | Scope.Scope>) =>
  effect.pipe(Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive)))

/**
 * Counts `fs.lstatSync` calls (the trust walk's step) while the scope lives: the CommonJS `fs` is
 * wrapped and `syncBuiltinESMExports` makes ESM importers of `node:fs` see the wrapper.
 */
const countLstats: Effect.Effect<() => number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const fs: { lstatSync: typeof Fs.lstatSync } = createRequire(import.meta.url)("node:fs")
    const original = fs.lstatSync
    let calls = 0
    const counting: typeof Fs.lstatSync = Object.assign(
      (...args: Parameters<typeof Fs.lstatSync>) => {
        calls += 1
        return original(...args)
      },
      original
    )
    fs.lstatSync = counting
    syncBuiltinESMExports()
    return { fs, original, calls: () => calls }
  }),
  ({ fs, original }) =>
    Effect.sync(() => {
      fs.lstatSync = original
      syncBuiltinESMExports()
    })
).pipe(Effect.map(({ calls }) => calls))

describe("the warm hello path", () => {
  it.scopedLive("walks the trust rule far less than once per warm acquire", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo")
      const registry = yield* registryFor(c)
      const first = yield* registry.acquire("echo")
      const lstats = yield* countLstats
      const acquires = 200
      for (let i = 0; i < acquires; i++) expect(yield* registry.acquire("echo")).toMatchObject({ pid: first.pid, launched: false })
      // One walk of a definition and its executable is dozens of lstats; here there is at most one walk
      // per recheck period (1 s), so far fewer than one lstat per acquire.
      expect(lstats()).toBeLessThan(acquires)
    })))

  it.scopedLive("refuses an executable swapped for one others can write, at the next acquire", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      c.define("echo")
      const registry = yield* registryFor(c)
      const first = yield* registry.acquire("echo")
      expect(yield* registry.acquire("echo")).toMatchObject({ pid: first.pid, launched: false })
      // A new file renamed over the old one: a new inode, so a new stamp, so the walk runs again.
      const swapped = `${c.backend}.new`
      Fs.copyFileSync(c.backend, swapped)
      Fs.chmodSync(swapped, 0o777)
      Fs.renameSync(swapped, c.backend)
      const error = yield* Effect.flip(registry.acquire("echo"))
      expect(error.code).toBe("launch_failed")
      expect(error.message).toContain(`${c.backend}: writable by others (mode 0777)`)
    })))

  it.scopedLive("re-walks the trust rule before a launch even while a verdict is cached (a #! interpreter loosened)", () =>
    live(Effect.gen(function*() {
      const c = makeRegistryCase(root)
      // A script whose interpreter is a copy we can loosen without touching the script itself.
      const interpreter = Path.join(c.dir, "interp", "python3")
      Fs.mkdirSync(Path.dirname(interpreter))
      Fs.copyFileSync(Fs.realpathSync(Fs.readFileSync(c.backend, "utf8").split("\n")[0]?.slice(2) ?? ""), interpreter)
      Fs.chmodSync(interpreter, 0o755)
      const script = Path.join(c.dir, "echo.py")
      Fs.writeFileSync(script, `#!${interpreter}\n${Fs.readFileSync(c.backend, "utf8").split("\n").slice(1).join("\n")}`, { mode: 0o755 })
      c.define("echo", { launch: { executable: script } })
      const registry = yield* registryFor(c)
      const first = yield* registry.acquire("echo")
      expect(first.launched).toBe(true)
      // The script's own stamp does not change: its cached verdict stands for hellos (up to 1 s)...
      Fs.chmodSync(interpreter, 0o777)
      process.kill(first.pid, "SIGKILL")
      yield* waitFor("the backend to be retired", () => !c.backendPids().includes(first.pid), 5_000)
      for (let i = 0; i < 200 && (yield* registry.counters).pruned === 0; i++) yield* Effect.sleep("10 millis")
      // ...but a launch walks it again first, and runs nothing.
      const error = yield* Effect.flip(registry.acquire("echo"))
      expect(error.code).toBe("launch_failed")
      expect(error.message).toContain(`its #! interpreter ${interpreter}: writable by others (mode 0777)`)
      expect(c.backendPids()).toEqual([])
    })))
})
