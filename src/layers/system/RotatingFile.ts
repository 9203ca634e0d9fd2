/**
 * RotatingFile: an append-only file that rotates by size (`file` → `file.1` … `file.<keep>`, the oldest
 * dropped), shared by child logs and JSONL traces. Writes from many fibers never interleave inside a chunk.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"

/** When to rotate and how many old files to keep (`keep: 0` truncates instead of keeping any). */
export interface RotatingFileOptions {
  readonly maxBytes: number
  readonly keep: number
}

/** An open rotating file; it is closed when the scope that made it closes. */
export interface RotatingFile {
  readonly path: string
  /** Appends `chunk` whole (a chunk is never split across files); an I/O failure is logged, never raised. */
  readonly write: (chunk: string | Uint8Array) => Effect.Effect<void>
  /** Appends `text` and a newline as one chunk. */
  readonly writeLine: (text: string) => Effect.Effect<void>
}

const encoder = new TextEncoder()

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Opens `path` for appending (creating parent directories, file mode 0600) for the life of the scope.
 * A chunk that would carry the file past `maxBytes` first rotates it, unless the file is empty.
 */
export const makeRotatingFile = (
  path: string,
  options: RotatingFileOptions
): Effect.Effect<RotatingFile, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxBytes = Math.max(1, options.maxBytes)
    const keep = Math.max(0, Math.floor(options.keep))
    const permit = yield* Effect.makeSemaphore(1)
    // The fd is owned by whoever holds the permit; it is opened lazily so a failed open is retried.
    let fd: number | undefined
    let size = 0
    let closed = false
    let failing = false

    const open = (): number => {
      Fs.mkdirSync(Path.dirname(path), { recursive: true })
      const opened = Fs.openSync(path, "a", 0o600)
      size = Fs.fstatSync(opened).size
      fd = opened
      return opened
    }

    const close = (): void => {
      if (fd !== undefined) {
        const current = fd
        fd = undefined
        Fs.closeSync(current)
      }
    }

    const rotate = (): void => {
      close()
      if (keep === 0) {
        Fs.rmSync(path, { force: true })
        return
      }
      Fs.rmSync(`${path}.${keep}`, { force: true })
      for (let n = keep - 1; n >= 1; n--) {
        if (Fs.existsSync(`${path}.${n}`)) Fs.renameSync(`${path}.${n}`, `${path}.${n + 1}`)
      }
      if (Fs.existsSync(path)) Fs.renameSync(path, `${path}.1`)
    }

    // Synchronous appends: chunks are small, the disk is local, and one sync block keeps rotation + write
    // atomic and in order without a buffer to lose at exit.
    const append = (bytes: Uint8Array): void => {
      let target = fd ?? open()
      if (size > 0 && size + bytes.byteLength > maxBytes) {
        rotate()
        target = open()
      }
      let written = 0
      while (written < bytes.byteLength) {
        written += Fs.writeSync(target, bytes, written, bytes.byteLength - written)
      }
      size += bytes.byteLength
    }

    const write = (chunk: string | Uint8Array): Effect.Effect<void> =>
      permit.withPermits(1)(
        Effect.suspend(() => {
          if (closed) return Effect.void
          const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk
          if (bytes.byteLength === 0) return Effect.void
          try {
            append(bytes)
            failing = false
            return Effect.void
          } catch (error) {
            try {
              close()
            } catch {
              // The fd is already unusable; the next write reopens the file.
            }
            // Logged once per run of failures, so a full disk does not flood the host's own log.
            if (failing) return Effect.void
            failing = true
            return Effect.logWarning(`${path}: write failed, output dropped until it succeeds: ${describe(error)}`)
          }
        })
      )

    yield* Effect.addFinalizer(() =>
      permit.withPermits(1)(
        Effect.sync(() => {
          closed = true
          try {
            close()
          } catch {
            // Closing can only fail on an fd already gone; there is nothing left to flush.
          }
        })
      )
    )

    return { path, write, writeLine: (text: string) => write(`${text}\n`) } satisfies RotatingFile
  })
