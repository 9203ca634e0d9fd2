/**
 * The deterministic runtime a simulation runs on: every fiber runs on a scheduler the driver empties
 * (tasks in the order they were scheduled, until none is left), and time is a virtual clock that only
 * the driver moves, firing sleeps in time order. Same seed, same schedule: same interleaving, same run.
 *
 * Why not `TestClock`: its `adjust` waits for three real timer ticks (`setTimeout 0`) per sleep it
 * wakes, about 4 ms each, so a thousand schedules of hundreds of wake-ups would take an hour. This
 * clock is the same idea (sleeps held until the clock passes them, in order) driven synchronously.
 *
 * The code under test does a little real I/O of its own that the simulation does not replace (the
 * broker hashes a backend's executable with a file stream): `settle` waits for it, so virtual time
 * never moves while real work is pending, and the outcome stays the same.
 */
import { Cause, Clock, Duration, Effect, Exit, type Fiber, Logger, LogLevel, Random, Scheduler } from "effect"

/** What the driver does with the runtime. */
export interface VirtualRuntime {
  /** Virtual time now, in epoch ms. */
  readonly now: () => number
  /** Starts `effect` on this runtime (its scheduler, clock and seeded random); it runs at the next `settle`. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  /** Runs `effect` to its end now, without time passing or real I/O (a read of in-memory state); throws if it cannot. */
  readonly runNow: <A, E>(effect: Effect.Effect<A, E>) => A
  /** Runs every fiber until all wait on the clock or on each other (and real I/O they started is done). */
  readonly settle: () => Promise<void>
  /** Moves the clock `ms` forward, waking sleeps in time order and settling after each instant. */
  readonly advance: (ms: number) => Promise<void>
}

/** A runtime that never stops scheduling or waking: a livelock in the code under test (or the simulation). */
export class Livelock extends Error {}

interface Sleeper {
  readonly at: number
  readonly order: number
  readonly wake: () => void
}

/** Scheduled tasks run in one settle before it declares a livelock. */
const maxTasksPerSettle = 2_000_000
/** Wake-ups in one `advance` before it declares a livelock. */
const maxWakesPerAdvance = 200_000
/** Real time `settle` waits for real I/O started by the code under test. */
const realIoBoundMs = 10_000

/** File requests in flight in this process (a stream's open, read or close). */
const realIoPending = (): boolean => process.getActiveResourcesInfo().some((name) => name.startsWith("FSReq"))

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A runtime starting at `startAt` (epoch ms) whose `Random` is seeded with `seed`. */
export const makeVirtualRuntime = (seed: number, startAt: number): VirtualRuntime => {
  let now = startAt
  let order = 0
  const sleepers: Array<Sleeper> = []
  const tasks: Array<Scheduler.Task> = []
  let head = 0

  const remove = (sleeper: Sleeper) => {
    const index = sleepers.indexOf(sleeper)
    if (index >= 0) sleepers.splice(index, 1)
  }
  const insert = (sleeper: Sleeper) => {
    let low = 0
    let high = sleepers.length
    while (low < high) {
      const middle = (low + high) >> 1
      const other = sleepers[middle]
      if (other !== undefined && (other.at < sleeper.at || (other.at === sleeper.at && other.order < sleeper.order))) low = middle + 1
      else high = middle
    }
    sleepers.splice(low, 0, sleeper)
  }

  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    unsafeCurrentTimeNanos: () => BigInt(Math.round(now * 1_000_000)),
    currentTimeMillis: Effect.sync(() => now),
    currentTimeNanos: Effect.sync(() => BigInt(Math.round(now * 1_000_000))),
    sleep: (duration: Duration.Duration) =>
      Effect.async<void>((resume) => {
        const sleeper: Sleeper = { at: now + Duration.toMillis(duration), order: order++, wake: () => resume(Effect.void) }
        insert(sleeper)
        return Effect.sync(() => remove(sleeper))
      })
  }

  const scheduler = Scheduler.make((task) => {
    tasks.push(task)
  })

  const runTasks = () => {
    let ran = 0
    while (head < tasks.length) {
      const task = tasks[head]
      head++
      task?.()
      if (++ran > maxTasksPerSettle) throw new Livelock(`more than ${maxTasksPerSettle} scheduled tasks without the clock moving`)
    }
    tasks.length = 0
    head = 0
  }

  const settle = async () => {
    const deadline = Date.now() + realIoBoundMs
    for (;;) {
      runTasks()
      // One turn of the event loop: real I/O that finished comes back as tasks of its fiber.
      await nextTurn()
      if (head >= tasks.length && !realIoPending()) return
      if (Date.now() > deadline) throw new Livelock(`real I/O of the code under test still pending after ${realIoBoundMs} ms`)
    }
  }

  const random = Random.make(seed)

  const fork = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.runFork(effect.pipe(Effect.withClock(clock), Effect.withRandom(random), Logger.withMinimumLogLevel(LogLevel.None)), { scheduler })

  return {
    now: () => now,
    fork,
    runNow: (effect) => {
      const fiber = fork(effect)
      runTasks()
      const exit = fiber.unsafePoll()
      if (exit === null) throw new Error("runNow: the effect waits on time or on another fiber")
      if (Exit.isFailure(exit)) throw new Error(`runNow: ${Cause.pretty(exit.cause)}`)
      return exit.value
    },
    settle,
    advance: async (ms) => {
      const target = now + ms
      await settle()
      let wakes = 0
      for (;;) {
        const next = sleepers[0]
        if (next === undefined || next.at > target) break
        now = Math.max(now, next.at)
        while (sleepers[0] !== undefined && sleepers[0].at <= now) {
          sleepers.shift()?.wake()
          if (++wakes > maxWakesPerAdvance) throw new Livelock(`more than ${maxWakesPerAdvance} wake-ups in ${ms} virtual ms`)
        }
        await settle()
      }
      now = target
      await settle()
    }
  }
}
