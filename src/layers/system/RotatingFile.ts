/**
 * RotatingFile: an append-only file that rotates by size (`file` → `file.1` … `file.<keep>`, the oldest
 * dropped), shared by child logs and JSONL traces. Writes from many fibers never interleave inside a chunk.
 * A `buffered` file's write only buffers its chunk: the buffer is written in one batch after the current
 * turn of the event loop (off the request path that wrote it), at once past `flushBytes`, and before it closes.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Runtime } from "effect"
import type { Scope } from "effect"

/** When to rotate and how many old files to keep (`keep: 0` truncates instead of keeping any). */
export interface RotatingFileOptions {
  readonly maxBytes: number
  readonly keep: number
  /**
   * Buffer writes and write them after the current turn of the event loop (trace files: off the request
   * path). Without it each write reaches the file before `write` returns (child logs: a process's output
   * is all in its log once its exit is reported).
   */
  readonly buffered?: boolean
}

/** An open rotating file; it is closed when the scope that made it closes. */
export interface RotatingFile {
  readonly path: string
  /** Appends `chunk` whole (a chunk is never split across files); an I/O failure is logged, never raised. */
  readonly write: (chunk: string | Uint8Array) => Effect.Effect<void>
  /** Appends `text` and a newline as one chunk. */
  readonly writeLine: (text: string) => Effect.Effect<void>
  /** Writes whatever is buffered now (what the scope's finalizer also does). */
  readonly flush: Effect.Effect<void>
}

/** Buffered bytes past which a write flushes at once instead of after the current turn (bounds memory). */
export const flushBytes = 1 << 20

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
    const buffered = options.buffered === true
    // The fd is opened lazily so a failed open is retried by the next flush.
    let fd: number | undefined
    let size = 0
    let closed = false
    let failing = false
    // Chunks written but not yet on disk, in order; `scheduled` when a flush is queued for after this turn.
    let pending: Array<Uint8Array> = []
    let pendingBytes = 0
    let scheduled: NodeJS.Immediate | undefined
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())

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

    // One synchronous block per chunk keeps rotation + write atomic and in order; it runs from `flushNow`
    // (for a buffered file, after the writer's turn).
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

    /**
     * Writes every buffered chunk. An I/O failure drops what is buffered; the warning it returns is
     * returned once per run of failures, so a full disk does not flood the host's own log.
     */
    const flushNow = (): string | undefined => {
      if (scheduled !== undefined) {
        clearImmediate(scheduled)
        scheduled = undefined
      }
      if (pending.length === 0) return undefined
      const chunks = pending
      pending = []
      pendingBytes = 0
      try {
        // Chunks that fit the current file go out as one write; a chunk that would pass maxBytes rotates first.
        let batch: Array<Uint8Array> = []
        let batchBytes = 0
        const writeBatch = () => {
          if (batchBytes === 0) return
          append(batch.length === 1 && batch[0] !== undefined ? batch[0] : Buffer.concat(batch, batchBytes))
          batch = []
          batchBytes = 0
        }
        for (const chunk of chunks) {
          if (size + batchBytes > 0 && size + batchBytes + chunk.byteLength > maxBytes) writeBatch()
          batch.push(chunk)
          batchBytes += chunk.byteLength
        }
        writeBatch()
        failing = false
        return undefined
      } catch (error) {
        try {
          close()
        } catch {
          // The fd is already unusable; the next flush reopens the file.
        }
        if (failing) return undefined
        failing = true
        return `${path}: write failed, output dropped until it succeeds: ${describe(error)}`
      }
    }

    const logged = (warning: string | undefined): Effect.Effect<void> => warning === undefined ? Effect.void : Effect.logWarning(warning)

    // A flush after the writer's turn runs outside any fiber: its warning goes to the opener's logger.
    const flushLater = (): void => {
      scheduled = undefined
      const warning = flushNow()
      if (warning !== undefined) runFork(Effect.logWarning(warning))
    }

    const write = (chunk: string | Uint8Array): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (closed) return Effect.void
        const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk
        if (bytes.byteLength === 0) return Effect.void
        pending.push(bytes)
        pendingBytes += bytes.byteLength
        if (buffered && pendingBytes < flushBytes) {
          if (scheduled === undefined) scheduled = setImmediate(flushLater)
          return Effect.void
        }
        return logged(flushNow())
      })

    // Nothing written before the scope closes is lost: the finalizer writes the buffer, then closes.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const warning = flushNow()
        closed = true
        try {
          close()
        } catch {
          // Closing can only fail on an fd already gone; the buffer was written above.
        }
        return logged(warning)
      })
    )

    return { path, write, writeLine: (text: string) => write(`${text}\n`), flush: Effect.suspend(() => logged(flushNow())) } satisfies RotatingFile
  })
