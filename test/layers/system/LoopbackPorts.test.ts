/**
 * The port allocator treats running out of descriptors as passing: it retries, and a port comes back
 * once descriptors are free again (a real process under a low open-file limit; needs `npm run build`).
 */
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

const fixture = Path.resolve(import.meta.dirname, "../../fixtures/ports-out-of-descriptors.mjs")

describe("LoopbackPorts out of descriptors", () => {
  it.live("retries an allocation that meets EMFILE and hands out a port once descriptors are free again", () =>
    Effect.gen(function*() {
      const output = yield* Effect.async<string, Error>((resume) => {
        execFile("prlimit", ["--nofile=256:256", process.execPath, fixture], { timeout: 15_000 }, (error, stdout, stderr) =>
          resume(error === null ? Effect.succeed(stdout) : Effect.fail(new Error(`${error.message}\n${stderr}`))))
      })
      const result = JSON.parse(output) as { port?: number; exhausted?: boolean; error?: string }
      expect(result.error).toBeUndefined()
      expect(result.exhausted).toBe(true)
      expect(result.port).toBeGreaterThan(0)
    }))
})
