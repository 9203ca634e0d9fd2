/**
 * The host's event feed: a bounded ring of the newest events (for `Last-Event-ID` resumes, the status
 * page's first paint and live subscribers). Publishing numbers the event and writes its ring slot in one
 * synchronous step (no lock: every hook invocation publishes, and a semaphore cost ~8 µs of its ~15 µs),
 * then wakes the subscribers. A subscriber reads the ring from its own cursor on each wake, so it sees
 * every event exactly once, in id order, whichever fiber published it: either in its backlog or live.
 */
import { Effect, Layer, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import { type HostEvent, HostEvents, type HostEventsShape, type NumberedEvent } from "../../services/host/HostEvents.js"
import { TraceLog } from "../../services/host/Traces.js"

/** How many events the host keeps for resumes when nobody says otherwise. */
export const defaultEventCapacity = 1000

/**
 * An event feed keeping the newest `capacity` events (at least 1) for resumes. A live subscriber that falls
 * more than `capacity` events behind skips to the oldest one the ring still holds, so nobody blocks a publisher.
 */
export const makeHostEvents = (capacity: number = defaultEventCapacity): Effect.Effect<HostEventsShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const size = Math.max(1, Math.floor(capacity))
    // Event `id` lives in slot `(id - 1) % size`; the ring holds ids `oldestHeld()` .. `nextId - 1`.
    const slots: Array<NumberedEvent | undefined> = new Array(size)
    let nextId = 1
    const oldestHeld = () => Math.max(1, nextId - size)
    /** The held events with ids in `from..nextId - 1` (`from` at least the oldest held), oldest first. */
    const heldFrom = (from: number): ReadonlyArray<NumberedEvent> => {
      const out: Array<NumberedEvent> = []
      for (let id = Math.max(from, oldestHeld()); id < nextId; id++) {
        const held = slots[(id - 1) % size]
        if (held !== undefined) out.push(held)
      }
      return out
    }
    // Wakes carry nothing: a woken subscriber reads the ring, so one pending wake is enough.
    const wakes = yield* Effect.acquireRelease(PubSub.sliding<void>(1), PubSub.shutdown)

    const publish = (event: HostEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const numbered: NumberedEvent = { id: nextId, event }
        slots[(nextId - 1) % size] = numbered
        nextId += 1
        return PubSub.publish(wakes, undefined)
      })

    // `gap` is only ever true with a non-empty backlog: its first id is the oldest the ring holds.
    const subscribe = (requested: number | undefined) =>
      Effect.map(PubSub.subscribe(wakes), (queue) => {
        // Read after the wake subscription is taken: an event published from here on wakes this subscriber.
        const afterId = requested === undefined ? undefined : Math.max(0, Math.floor(requested))
        const lastId = nextId - 1
        // An id newer than any this host numbered comes from an earlier host life: everything held is
        // new to that client, and what it missed in between is gone.
        const stale = afterId !== undefined && afterId > lastId
        const backlog = afterId === undefined ? [] : heldFrom(stale ? 1 : afterId + 1)
        const gap = afterId !== undefined && (stale ? lastId > 0 : afterId + 1 < oldestHeld())
        let cursor = lastId
        const live = Stream.fromQueue(queue).pipe(Stream.mapConcat(() => {
          const fresh = heldFrom(cursor + 1)
          cursor = nextId - 1
          return fresh
        }))
        return { backlog, gap, live }
      })

    const recent = (limit: number): Effect.Effect<ReadonlyArray<NumberedEvent>> =>
      Effect.sync(() => (limit <= 0 ? [] : heldFrom(nextId - Math.floor(limit))))

    return { publish, subscribe, recent }
  })

/** The host's event feed with the default ring of 1000 events; live subscribers end when the host stops. */
export const HostEventsLive: Layer.Layer<HostEvents> = Layer.scoped(HostEvents, makeHostEvents(defaultEventCapacity))

/**
 * The trace log, also publishing each lifecycle event and invocation record as a `lifecycle` /
 * `invocation` host event, after it is written to its file.
 */
export const withHostEvents = <E, R>(traces: Layer.Layer<TraceLog, E, R>): Layer.Layer<TraceLog, E, R | HostEvents> =>
  Layer.effect(
    TraceLog,
    Effect.gen(function*() {
      const inner = yield* TraceLog
      const events = yield* HostEvents
      return TraceLog.of({
        lifecycle: (event) => Effect.zipRight(inner.lifecycle(event), events.publish({ _tag: "lifecycle", ...event })),
        invocation: (record) =>
          Effect.zipRight(
            inner.invocation(record),
            events.publish({
              _tag: "invocation",
              at: record.at,
              hook: record.hook,
              envelope_id: record.envelope_id,
              subject: record.subject,
              decision: record.decision,
              steps: record.steps,
              duration_ms: record.duration_ms
            })
          )
      })
    })
  ).pipe(Layer.provide(traces))
