/**
 * The runs (request or connection fibers, or requests served in plain code) a server has in flight: one
 * sweeper fiber enforces their deadline by interrupting overdue fibers (or cancelling a run that has
 * none), and drain waits for the set to empty or interrupts it. One sweeper instead of `Effect.timeout`
 * per run: the latter forks two fibers and a timer per call.
 */
import { Clock, Deferred, Effect, Exit, Fiber, FiberId, Schedule } from "effect"
import type { Scope } from "effect"

/** Why the server interrupted a run; `null` while the run is its own. */
export type InterruptReason = "timeout" | "drain" | "client"

/** One in-flight run. Created and mutated only by event-loop callbacks and the sweeper. */
export interface Run {
  /**
   * Its fiber; `undefined` while the run is plain code (a request on the direct path reading its body),
   * which `cancel` then ends.
   */
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Ends a run that has no fiber (yet): called at most once per interrupt, on the event loop. */
  readonly cancel?: () => void
  /** Sweeper time when the run started (at most one tick early). */
  readonly stampMs: number
  interruptedBy: InterruptReason | null
}

/** The fiber id the server interrupts runs as, so their causes say who did it. */
export const serverFiberId = FiberId.make(-7, 0)

/** Ticks between 1 ms and 50 ms, about a twentieth of the deadline. */
export const sweepTickMs = (timeoutMs: number): number => Math.min(50, Math.max(1, Math.floor(timeoutMs / 20)))

/** In-flight runs of one server. Deadlines fire between `timeoutMs` and `timeoutMs + 2 ticks`. */
export class InFlightRuns<R extends Run> {
  private readonly runs = new Set<R>()
  private lastSweepMs = 0
  private idleWaiter: Deferred.Deferred<void> | undefined

  constructor(
    readonly timeoutMs: number,
    readonly tickMs: number,
    /** What a deadline miss does besides interrupting: log, count, raise the route alarm. */
    private readonly onTimeout: (run: R) => Effect.Effect<void>
  ) {}

  get size(): number {
    return this.runs.size
  }

  /** The stamp a run started now gets. */
  get stamp(): number {
    return this.lastSweepMs
  }

  add(run: R): void {
    this.runs.add(run)
  }

  delete(run: R): void {
    this.runs.delete(run)
    if (this.runs.size === 0 && this.idleWaiter !== undefined) {
      Deferred.unsafeDone(this.idleWaiter, Exit.void)
      this.idleWaiter = undefined
    }
  }

  /** Interrupts every run past its deadline, as of `nowMs`. */
  sweep(nowMs: number): Effect.Effect<void> {
    this.lastSweepMs = nowMs
    const limit = this.timeoutMs + this.tickMs
    const overdue: Array<R> = []
    // Insertion order is stamp order, and every run has the same deadline: stop at the first in time.
    for (const run of this.runs) {
      if (nowMs - run.stampMs < limit) break
      if (run.interruptedBy === null) overdue.push(run)
    }
    if (overdue.length === 0) return Effect.void
    return Effect.forEach(
      overdue,
      (run) => {
        run.interruptedBy = "timeout"
        stop(run)
        return this.onTimeout(run)
      },
      { discard: true }
    )
  }

  /** Completes when no run is in flight. */
  readonly awaitIdle: Effect.Effect<void> = Effect.suspend(() => {
    if (this.runs.size === 0) return Effect.void
    if (this.idleWaiter === undefined) this.idleWaiter = Deferred.unsafeMake<void>(FiberId.none)
    return Deferred.await(this.idleWaiter)
  })

  /** Interrupts the runs `select` picks (a closed connection's, say), without waiting. */
  interruptWhere(reason: InterruptReason, select: (run: R) => boolean): void {
    for (const run of this.runs) {
      if (select(run)) {
        if (run.interruptedBy === null) run.interruptedBy = reason
        stop(run)
      }
    }
  }

  /** Interrupts every run still in flight and waits (at most `boundMs`) for them to end. */
  interruptAll(reason: InterruptReason, boundMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      // A copy: cancelling a run without a fiber removes it from the set at once.
      for (const run of Array.from(this.runs)) {
        if (run.interruptedBy === null) run.interruptedBy = reason
        stop(run)
        if (run.fiber !== undefined) fibers.push(run.fiber)
      }
      return Effect.forEach(fibers, Fiber.await, { discard: true }).pipe(
        Effect.timeout(boundMs),
        Effect.ignore
      )
    })
  }
}

/** Interrupts a run's fiber, or cancels a run that has none. */
const stop = (run: Run): void => {
  if (run.fiber !== undefined) run.fiber.unsafeInterruptAsFork(serverFiberId)
  else run.cancel?.()
}

/** Runs the sweeper for `runs` until the scope closes. */
export const startSweeper = <R extends Run>(runs: InFlightRuns<R>): Effect.Effect<void, never, Scope.Scope> => {
  const sweepNow = Effect.flatMap(Clock.currentTimeMillis, (now) => runs.sweep(now))
  // The first sweep runs before the server accepts, so the first runs get a real stamp.
  return sweepNow.pipe(
    Effect.zipRight(
      sweepNow.pipe(Effect.repeat(Schedule.spaced(runs.tickMs)), Effect.interruptible, Effect.forkScoped)
    ),
    Effect.asVoid
  )
}
