/**
 * A component's log (`logs/<id>.log`, its stdout and stderr) for `GET /v1/components/{id}/logs`: the last N
 * lines, read from at most the file's last few MB, then, when following, the bytes appended since, polled
 * and bounded per read, until the client goes or the follow's time is up. A rotation (the file shrinks or
 * is replaced) starts the new file from its beginning.
 */
import * as Fs from "node:fs/promises"
import { Effect, Option, Ref, Schedule, Stream } from "effect"
import { readRange } from "../../system/FileRange.js"

/** The most lines a tail returns. */
export const maxTailLines = 10_000
/** Lines when the client names none. */
export const defaultTailLines = 100
/** A tail reads at most this much of the end of the file. */
export const tailWindowBytes = 4 * 1024 * 1024
/** A follow reads at most this much per poll. */
export const followChunkBytes = 1024 * 1024

/** Where a follow has read up to. */
interface FollowState {
  readonly offset: number
  readonly inode: number
}

const statOf = (file: string): Effect.Effect<Option.Option<{ readonly size: number; readonly inode: number }>> =>
  Effect.promise(() =>
    Fs.stat(file).then((stat) => Option.some({ size: stat.size, inode: stat.ino }), () => Option.none())
  )

/** The last `lines` lines of `file` (at most `maxTailLines`), and where the file ended when read. */
export const readTail = (file: string, lines: number): Effect.Effect<{ readonly text: string; readonly end: FollowState }> =>
  Effect.gen(function*() {
    const stat = yield* statOf(file)
    if (Option.isNone(stat)) return { text: "", end: { offset: 0, inode: 0 } }
    const { size, inode } = stat.value
    const start = Math.max(0, size - tailWindowBytes)
    const bytes = yield* readRange(file, start, size - start)
    const all = Buffer.from(bytes).toString("utf8").split("\n")
    // Read from the middle of the file: the first piece is a partial line.
    if (start > 0) all.shift()
    if (all.at(-1) === "") all.pop()
    const count = Math.max(0, Math.min(maxTailLines, Math.floor(lines)))
    const kept = count === 0 ? [] : all.slice(-count)
    return { text: kept.length === 0 ? "" : `${kept.join("\n")}\n`, end: { offset: start + bytes.length, inode } }
  })

/** Bytes appended to `file` after `from`, polled every `pollMs`, for at most `maxMs`. */
export const followFile = (
  file: string,
  from: FollowState,
  options: { readonly pollMs: number; readonly maxMs: number }
): Stream.Stream<Uint8Array> =>
  Stream.unwrap(Effect.map(Ref.make(from), (position) => {
    const poll = Effect.gen(function*() {
      const stat = yield* statOf(file)
      if (Option.isNone(stat)) return new Uint8Array(0)
      const state = yield* Ref.get(position)
      const rotated = stat.value.inode !== state.inode || stat.value.size < state.offset
      const offset = rotated ? 0 : state.offset
      const length = Math.min(followChunkBytes, stat.value.size - offset)
      const bytes = length > 0 ? yield* readRange(file, offset, length) : new Uint8Array(0)
      yield* Ref.set(position, { offset: offset + bytes.length, inode: stat.value.inode })
      return bytes
    })
    return Stream.repeatEffectWithSchedule(poll, Schedule.spaced(options.pollMs)).pipe(
      Stream.filter((bytes) => bytes.length > 0),
      Stream.interruptAfter(options.maxMs)
    )
  }))
