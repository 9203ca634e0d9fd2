/** Reading part of a file that another process may be writing, rotating or removing. */
import * as Fs from "node:fs/promises"
import { Effect } from "effect"

/** `length` bytes of `file` from `position` (fewer at its end); nothing when it cannot be read. */
export const readRange = (file: string, position: number, length: number): Effect.Effect<Buffer> =>
  Effect.promise(async () => {
    const handle = await Fs.open(file, "r").catch(() => undefined)
    if (handle === undefined) return Buffer.alloc(0)
    try {
      const buffer = Buffer.alloc(length)
      const { bytesRead } = await handle.read(buffer, 0, length, position)
      return buffer.subarray(0, bytesRead)
    } finally {
      await handle.close()
    }
  })
