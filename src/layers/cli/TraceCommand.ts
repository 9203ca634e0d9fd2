/**
 * `corral trace lifecycle|invocation [--component ID] [--since DURATION] [-f] [--json]`: reads the
 * host's trace files (`trace/<kind>.jsonl` and their rotated `.N` predecessors, oldest first) straight
 * from the data dir, so it works with or without a running host; `-f` then follows the current file.
 */
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { StringDecoder } from "node:string_decoder"
import { Effect, Option, Schema } from "effect"
import { InvocationRecord, LifecycleEvent } from "../../services/host/Traces.js"
import { readRange } from "../system/FileRange.js"
import { invocationLine, lifecycleLine } from "./EventLines.js"
import { type ReportedFailure, reportFailure } from "./Terminal.js"

/** Which trace. */
export type TraceKind = "lifecycle" | "invocation"

/** What to show. */
export interface TraceQuery {
  readonly kind: TraceKind
  readonly component: string | undefined
  /** Only records at or after this time (epoch ms). */
  readonly since: number | undefined
  readonly follow: boolean
  readonly json: boolean
}

const units: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `90s`, `15m`, `2h`, `1d`, `500ms`, and sums of them (`1h30m`, as systemd writes them) in milliseconds; none for anything else. */
export const parseDuration = (text: string): Option.Option<number> => {
  const trimmed = text.trim()
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y
  let total = 0
  while (part.lastIndex < trimmed.length) {
    const match = part.exec(trimmed)
    const unit = match?.[2] === undefined ? undefined : units[match[2]]
    if (match?.[1] === undefined || unit === undefined) return Option.none()
    total += Number(match[1]) * unit
  }
  return trimmed.length === 0 ? Option.none() : Option.some(total)
}

/** What `--since` accepts, for its error message. */
export const sinceForms = "a duration like 90s, 15m, 1h30m or 2d, or an ISO 8601 time like 2026-01-31 or 2026-01-31T14:00:00Z"

/**
 * `--since`: a duration back from `now`, or an ISO 8601 date or time (a date alone is UTC midnight, a
 * time without an offset is local, as `Date.parse` reads them); the epoch ms it names, or none.
 */
export const parseSince = (text: string, now: number): Option.Option<number> => {
  const trimmed = text.trim()
  return Option.orElse(
    Option.map(parseDuration(trimmed), (ms) => now - ms),
    () => /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? Option.filter(Option.some(Date.parse(trimmed)), (at) => !Number.isNaN(at)) : Option.none()
  )
}

const decodeLifecycle = Schema.decodeUnknownOption(Schema.parseJson(LifecycleEvent))
const decodeInvocation = Schema.decodeUnknownOption(Schema.parseJson(InvocationRecord))

/** The line to print for one trace line, or none when the query filters it out. */
const render = (query: TraceQuery, line: string): Option.Option<string> => {
  if (line.trim() === "") return Option.none()
  const shown = (at: string, matches: boolean, text: () => string): Option.Option<string> =>
    matches && (query.since === undefined || Date.parse(at) >= query.since) ? Option.some(query.json ? line : text()) : Option.none()
  if (query.kind === "lifecycle") {
    return Option.match(decodeLifecycle(line), {
      // A line this CLI cannot read is shown as it is, unless a filter asks for something it cannot tell.
      onNone: () => query.component === undefined && query.since === undefined ? Option.some(line) : Option.none(),
      onSome: (event) => shown(event.at, query.component === undefined || event.component === query.component, () => lifecycleLine(event))
    })
  }
  return Option.match(decodeInvocation(line), {
    onNone: () => query.component === undefined && query.since === undefined ? Option.some(line) : Option.none(),
    onSome: (record) =>
      shown(record.at, query.component === undefined || record.steps.some((step) => step.component === query.component), () => invocationLine(record))
  })
}

const readIfPresent = (file: string): Effect.Effect<Option.Option<Buffer>> =>
  Effect.promise(() => Fs.readFile(file).then((bytes) => Option.some(bytes), () => Option.none()))

const statIfPresent = (file: string): Effect.Effect<Option.Option<{ readonly size: number; readonly ino: number }>> =>
  Effect.promise(() => Fs.stat(file).then((stat) => Option.some({ size: stat.size, ino: stat.ino }), () => Option.none()))

/** The most rotated files a trace keeps that the reader looks for (`trace.keep` is at most this in practice). */
const maxRotated = 20
const pollMs = 250

/** Prints the trace records the query selects, then with `follow` the ones appended later, until interrupted. */
export const showTrace = (dataDir: string, query: TraceQuery): Effect.Effect<void, ReportedFailure> =>
  Effect.gen(function*() {
    const file = Path.join(dataDir, "trace", `${query.kind}.jsonl`)
    const emit = (lines: ReadonlyArray<string>) =>
      Effect.sync(() => {
        const out = lines.flatMap((line) => Option.toArray(render(query, line)))
        if (out.length > 0) process.stdout.write(`${out.join("\n")}\n`)
      })
    for (let n = maxRotated; n >= 1; n--) {
      const rotated = yield* readIfPresent(`${file}.${n}`)
      if (Option.isSome(rotated)) yield* emit(rotated.value.toString("utf8").split("\n"))
    }
    const current = yield* readIfPresent(file)
    if (Option.isNone(current) && !query.follow) {
      return yield* reportFailure(`corral: no ${query.kind} trace in ${dataDir} (${file} does not exist; a host writes it once it runs)`)
    }
    const text = Option.match(current, { onNone: () => "", onSome: (bytes) => bytes.toString("utf8") })
    // The last piece may be a line still being written: it waits for the rest.
    const lines = text.split("\n")
    let partial = lines.pop() ?? ""
    yield* emit(lines)
    if (!query.follow) return
    let offset = Option.match(current, { onNone: () => 0, onSome: (bytes) => bytes.length })
    let inode = Option.match(yield* statIfPresent(file), { onNone: () => 0, onSome: (stat) => stat.ino })
    // A character cut between two reads is completed by the next.
    let decoder = new StringDecoder("utf8")
    // Follows until Ctrl-C; each pass is one bounded read of what was appended since the last.
    while (true) {
      yield* Effect.sleep(pollMs)
      const stat = yield* statIfPresent(file)
      if (Option.isNone(stat)) continue
      if (stat.value.ino !== inode || stat.value.size < offset) {
        // Rotated: the new file is read from its start.
        inode = stat.value.ino
        offset = 0
        partial = ""
        decoder = new StringDecoder("utf8")
      }
      if (stat.value.size === offset) continue
      const appended = yield* readRange(file, offset, Math.min(stat.value.size - offset, 1_048_576))
      offset += appended.length
      const pieces = (partial + decoder.write(appended)).split("\n")
      partial = pieces.pop() ?? ""
      yield* emit(pieces)
    }
  })
