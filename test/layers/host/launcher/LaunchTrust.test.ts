/**
 * The launcher checks what it runs at every launch, not only at config load: an executable made
 * writable by others after the host loaded its config is refused by name, and never runs.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { type LaunchSpec, ProcessLauncher } from "../../../../src/services/host/ProcessLauncher.js"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-launchtrust-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const script = (name: string, mode: number) => {
  const file = Path.join(root, name)
  const marker = Path.join(root, `${name}.ran`)
  Fs.writeFileSync(file, `#!/bin/sh\ntouch ${marker}\n`, { mode })
  Fs.chmodSync(file, mode)
  return { file, marker }
}

const spec = (executable: string): LaunchSpec => ({ name: "trust-check", executable, args: [], env: {}, sandbox: "none" })

describe("ProcessLauncherLive refuses what others can write", () => {
  it.scopedLive("a long-lived launch and a one-shot run of a 0777 executable fail naming the file; it never runs", () =>
    Effect.gen(function*() {
      const launcher = yield* ProcessLauncher
      const unsafe = script("swapped.sh", 0o777)
      const launched = yield* Effect.flip(launcher.launch(spec(unsafe.file), 1_000))
      expect(launched.message).toContain(unsafe.file)
      expect(launched.message).toContain("writable by others")
      const ran = yield* Effect.flip(launcher.run(spec(unsafe.file), new Uint8Array(0), { timeoutMs: 2_000, maxStdoutBytes: 1_024 }))
      expect(ran.message).toContain("writable by others")
      expect(Fs.existsSync(unsafe.marker)).toBe(false)
      // The same file, made safe, runs.
      Fs.chmodSync(unsafe.file, 0o755)
      const result = yield* launcher.run(spec(unsafe.file), new Uint8Array(0), { timeoutMs: 5_000, maxStdoutBytes: 1_024 })
      expect(result.exit.code).toBe(0)
      expect(Fs.existsSync(unsafe.marker)).toBe(true)
    }).pipe(Effect.provide(ProcessLauncherLive)))
})
