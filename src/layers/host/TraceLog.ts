/**
 * The host's two trace streams, kept apart on purpose: `trace/lifecycle.jsonl` (what happened to a
 * component) and `trace/invocation.jsonl` (what happened to a hook call). Both rotate.
 */
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import type { LifecycleEvent } from "../../services/host/Supervisor.js"
import { makeRotatingFile, type RotatingFileOptions } from "../system/RotatingFile.js"

/** Appenders for the two trace files. */
export interface TraceLogs {
  readonly lifecycle: (event: LifecycleEvent) => Effect.Effect<void>
  readonly invocation: (record: unknown) => Effect.Effect<void>
}

/** Opens both trace files under `<dataDir>/trace` for the life of the scope. */
export const makeTraceLogs = (dataDir: string, rotation: RotatingFileOptions): Effect.Effect<TraceLogs, never, Scope.Scope> =>
  Effect.gen(function*() {
    const lifecycle = yield* makeRotatingFile(Path.join(dataDir, "trace", "lifecycle.jsonl"), rotation)
    const invocation = yield* makeRotatingFile(Path.join(dataDir, "trace", "invocation.jsonl"), rotation)
    return {
      lifecycle: (event) => lifecycle.writeLine(JSON.stringify(event)),
      invocation: (record) => invocation.writeLine(JSON.stringify(record))
    }
  })
