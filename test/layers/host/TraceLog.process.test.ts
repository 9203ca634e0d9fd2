/**
 * The invocation trace of a real host process (`npm run build` first): trace lines are buffered off the
 * request path, so a burst of hook invocations followed at once by `SIGTERM` must still leave every
 * record in `trace/invocation.jsonl` (the trace file's finalizer writes the buffer before it closes).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, makeDataDir, removeDataDirs, startHost } from "../../support/hostProcess.js"

afterAll(removeDataDirs)

const burst = 300

describe("trace/invocation.jsonl of a running host", () => {
  it.scopedLive("keeps every record of a burst of invocations when the host is stopped right after it", () =>
    Effect.gen(function*() {
      // A one-component hook and no Dator quota: every invocation is an `allow` with one step.
      const host = yield* startHost(makeDataDir({
        "50-burst.json": { hooks: { burst: ["middleware.dator"] }, modules: { dator: { quota: null } } }
      }))
      const ids = Array.from({ length: burst }, (_, n) => `burst-${n}`)
      const answers = yield* Effect.forEach(
        ids,
        (id) => Effect.promise(() => control(host, "POST", "/v1/hooks/burst/invoke", { id, hook: "burst", subject: "user:1", payload: { n: id } })),
        { concurrency: 16 }
      )
      for (const answer of answers) expect(answer.status).toBe(200)
      // Stopped on the turn the last answer arrived: whatever is still buffered must be written at exit.
      const code = yield* Effect.promise(() => host.stop("SIGTERM"))
      expect(code).toBe(0)
      const records = Fs.readFileSync(Path.join(host.dataDir, "trace", "invocation.jsonl"), "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { readonly hook: string; readonly envelope_id: string })
        .filter((record) => record.hook === "burst")
      expect(new Set(records.map((record) => record.envelope_id))).toEqual(new Set(ids))
      expect(records).toHaveLength(burst)
    }), 60_000)
})
