/**
 * The host's two trace streams, kept apart on purpose: `trace/lifecycle.jsonl` (what happened to a
 * component) and `trace/invocation.jsonl` (what happened to a hook call). Both rotate.
 */
import * as Path from "node:path"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { EffectiveConfig } from "../../services/host/EffectiveConfig.js"
import { HostPaths } from "../../services/host/HostPaths.js"
import { TraceLog, type TraceLogShape } from "../../services/host/Traces.js"
import { makeRotatingFile, type RotatingFileOptions } from "../system/RotatingFile.js"

/** Opens both trace files in `traceDir` for the life of the scope. */
export const makeTraceLogs = (traceDir: string, rotation: RotatingFileOptions): Effect.Effect<TraceLogShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Buffered: a trace line is written after the request's turn, not on it; the scope's end writes the rest.
    const buffered = { ...rotation, buffered: true }
    const lifecycle = yield* makeRotatingFile(Path.join(traceDir, "lifecycle.jsonl"), buffered)
    const invocation = yield* makeRotatingFile(Path.join(traceDir, "invocation.jsonl"), buffered)
    return {
      lifecycle: (event) => lifecycle.writeLine(JSON.stringify(event)),
      invocation: (record) => invocation.writeLine(JSON.stringify(record))
    }
  })

/** The host's trace files under `trace/`, rotated as `host.trace` says. */
export const TraceLogLive: Layer.Layer<TraceLog, never, HostPaths | EffectiveConfig> = Layer.scoped(
  TraceLog,
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    const paths = yield* HostPaths
    return yield* makeTraceLogs(paths.trace, { maxBytes: config.host.trace.max_bytes, keep: config.host.trace.keep })
  })
)
