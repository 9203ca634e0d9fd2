/**
 * The broker's frame reads: each connection must deliver a whole frame within the read deadline, and a
 * connection idle between frames ends as soon as the broker drains. Both are enforced from outside
 * the read (one sweeper fiber for every connection, one pass over the waiting reads at drain) instead
 * of an `Effect.timeout` and a race against the drain per read, which fork four fibers and a timer
 * per frame. An overdue or drained read's connection fiber is interrupted; the server then closes it.
 * A connection is idle (reclaimable when the broker is full) from the moment it waits for a frame with
 * no byte of one buffered until the first byte arrives; it stays busy through its frames' replies.
 */
import { Effect, Option } from "effect"
import type { Fiber, Scope } from "effect"
import type { BoundedConnection } from "../../services/server/BoundedConnection.js"
import { InFlightRuns, type Run, startSweeper, sweepTickMs } from "../server/InFlightRuns.js"
import { FrameDecoder, type FrameResult } from "./BrokerFraming.js"

/** A connection waiting for the rest of a frame. */
interface FrameRead extends Run {
  readonly decoder: FrameDecoder
}

/** One connection's frames, in order. */
export interface ConnectionFrames {
  /**
   * The frames the next chunks complete (at least one; an error frame is last), or `None` when the
   * peer has finished, the connection failed, or the broker drains while no frame is under way.
   */
  readonly next: Effect.Effect<Option.Option<ReadonlyArray<FrameResult>>>
  /** Forgets the read in progress, if any: run when the connection's handler ends, however it ends. */
  readonly close: () => void
}

/** Frame reads of every broker connection. */
export interface FrameReads {
  /** The frames of `connection`; call from the fiber that serves it (the one a deadline interrupts). */
  readonly connection: (connection: BoundedConnection) => ConnectionFrames
  /** From now on a connection between frames ends: those waiting for a first byte end at once. */
  readonly drain: () => void
}

const finished = Effect.succeed(Option.none<ReadonlyArray<FrameResult>>())

/** Frame reads under `readDeadlineMs` per frame (enforced to within two sweeper ticks), the sweeper in the current scope. */
export const makeFrameReads = (readDeadlineMs: number): Effect.Effect<FrameReads, never, Scope.Scope> =>
  Effect.gen(function*() {
    const reads = new InFlightRuns<FrameRead>(readDeadlineMs, sweepTickMs(readDeadlineMs), () => Effect.void)
    let draining = false
    yield* startSweeper(reads)

    const connection = (peer: BoundedConnection): ConnectionFrames => {
      const decoder = new FrameDecoder()
      let current: FrameRead | undefined
      const chunk = peer.read.pipe(Effect.orElseSucceed(() => Option.none<Uint8Array>()))
      const untilFrames: Effect.Effect<Option.Option<ReadonlyArray<FrameResult>>> = Effect.flatMap(chunk, (bytes) => {
        if (Option.isNone(bytes)) return finished
        peer.setIdle(false)
        const results = decoder.push(bytes.value)
        return results.length === 0 ? untilFramesLazily : Effect.succeed(Option.some(results))
      })
      const untilFramesLazily = Effect.suspend(() => untilFrames)
      const forget = () => {
        if (current !== undefined) reads.delete(current)
        current = undefined
      }
      const start = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => {
        // A fresh record per frame: its stamp is the sweeper's clock now, and insertion order stays stamp order.
        current = { fiber, stampMs: reads.stamp, interruptedBy: null, decoder }
        reads.add(current)
      }
      const next = Effect.withFiberRuntime<Option.Option<ReadonlyArray<FrameResult>>>((fiber) => {
        if (decoder.pending() === 0) {
          if (draining) return finished
          // The previous frames are answered (replies written): nothing is under way until the next byte.
          peer.setIdle(true)
        }
        start(fiber)
        return Effect.map(untilFrames, (frames) => {
          forget()
          return frames
        })
      })
      return { next, close: forget }
    }

    const drain = () => {
      draining = true
      reads.interruptWhere("drain", (read) => read.decoder.pending() === 0)
    }

    return { connection, drain }
  })
