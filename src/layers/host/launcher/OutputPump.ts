/**
 * Output pumping: reads a child's pipe to its end, hands each chunk on (to a log file, a collector) and
 * keeps the last complete lines in memory for status.
 */
import type { Readable } from "node:stream"
import { NodeStream } from "@effect/platform-node"
import { Effect, Ref, Stream } from "effect"
import type { LaunchError } from "../../../services/host/ProcessLauncher.js"
import { errorText } from "../../../services/system/ErrorDetails.js"

const maxLineChars = 8_192

/** A pipe could not be read (rare: the fd went away); logged, and the pump ends. */
class OutputReadFailed {
  readonly _tag = "OutputReadFailed"
  constructor(readonly cause: unknown) {}
}

/** Appends `complete` lines to `lines`, keeping the last `limit` (oldest first). */
const appendLines = (lines: ReadonlyArray<string>, complete: ReadonlyArray<string>, limit: number) => {
  if (complete.length === 0) return lines
  const all = [...lines, ...complete]
  return all.length > limit ? all.slice(all.length - limit) : all
}

/** Where a pump keeps the last `limit` complete lines of what it reads. */
export interface LineSink {
  readonly lines: Ref.Ref<ReadonlyArray<string>>
  readonly limit: number
}

/**
 * Reads `readable` to its end, handing each chunk to `onChunk` and each complete line to every sink
 * (lines are capped at 8 KiB; the unfinished tail is owned by this fiber alone).
 */
export const pumpOutput = (
  readable: Readable,
  onChunk: (chunk: Uint8Array) => Effect.Effect<void, LaunchError>,
  sinks: ReadonlyArray<LineSink>
): Effect.Effect<void, LaunchError> =>
  Effect.suspend(() => {
    const decoder = new TextDecoder()
    let partial = ""
    const takeLines = (text: string): ReadonlyArray<string> => {
      const parts = (partial + text).split("\n")
      partial = parts.pop() ?? ""
      if (partial.length > maxLineChars) {
        parts.push(partial.slice(0, maxLineChars))
        partial = ""
      }
      return parts.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line))
    }
    const remember = (complete: ReadonlyArray<string>) =>
      Effect.forEach(sinks, (sink) => Ref.update(sink.lines, (lines) => appendLines(lines, complete, sink.limit)), { discard: true })
    return NodeStream.fromReadable(() => readable, (cause) => new OutputReadFailed(cause)).pipe(
      Stream.runForEach((chunk) =>
        Effect.zipRight(onChunk(chunk), remember(takeLines(decoder.decode(chunk, { stream: true }))))
      ),
      Effect.catchTag("OutputReadFailed", (error) =>
        Effect.logWarning(`reading child output failed: ${errorText(error.cause)}`)),
      Effect.zipRight(Effect.suspend(() => {
        const rest = partial + decoder.decode()
        partial = ""
        return rest === "" ? Effect.void : remember([rest])
      }))
    )
  })
