/**
 * The host's event feed: a bounded ring of the newest events (for `Last-Event-ID` resumes and the status
 * page's first paint) plus a sliding PubSub for live subscribers. Numbering, the ring and the PubSub are
 * updated in one serialized step, and a subscription is taken in that same step, so a subscriber sees
 * every event exactly once: either in its backlog or on its live stream, in id order.
 */
import { Effect, Layer, PubSub, Stream, SynchronizedRef } from "effect"
import type { Scope } from "effect"
import { type HostEvent, HostEvents, type HostEventsShape, type NumberedEvent } from "../../services/host/HostEvents.js"
import { TraceLog } from "../../services/host/Traces.js"

/** How many events the host keeps for resumes when nobody says otherwise. */
export const defaultEventCapacity = 1000

interface Ring {
  /** The id the next event gets; ids start at 1. */
  readonly nextId: number
  /** The newest events, oldest first, at most `capacity` of them. */
  readonly events: ReadonlyArray<NumberedEvent>
}

/**
 * An event feed keeping the newest `capacity` events (at least 1) for resumes; each live subscriber also
 * buffers at most `capacity` events and drops its oldest when it falls behind, so nobody blocks a publisher.
 */
export const makeHostEvents = (capacity: number = defaultEventCapacity): Effect.Effect<HostEventsShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const size = Math.max(1, Math.floor(capacity))
    const live = yield* Effect.acquireRelease(PubSub.sliding<NumberedEvent>(size), PubSub.shutdown)
    const ring = yield* SynchronizedRef.make<Ring>({ nextId: 1, events: [] })

    // The PubSub publish happens inside the ref's serialized update: ids reach subscribers in order,
    // and a subscription taken under the same lock sits exactly between backlog and live.
    const publish = (event: HostEvent): Effect.Effect<void> =>
      SynchronizedRef.updateEffect(ring, (state) => {
        const numbered: NumberedEvent = { id: state.nextId, event }
        const kept = state.events.length >= size ? state.events.slice(state.events.length - size + 1) : state.events
        return Effect.as(PubSub.publish(live, numbered), { nextId: state.nextId + 1, events: [...kept, numbered] })
      })

    // `gap` is only ever true with a non-empty backlog: its first id is the oldest the ring holds.
    const subscribe = (requested: number | undefined) =>
      SynchronizedRef.modifyEffect(ring, (state) =>
        Effect.map(PubSub.subscribe(live), (queue) => {
          const afterId = requested === undefined ? undefined : Math.max(0, Math.floor(requested))
          const lastId = state.nextId - 1
          const oldest = state.events[0]?.id ?? state.nextId
          // An id newer than any this host numbered comes from an earlier host life: everything held is
          // new to that client, and what it missed in between is gone.
          const stale = afterId !== undefined && afterId > lastId
          const backlog = afterId === undefined ? [] : stale ? state.events : state.events.filter((held) => held.id > afterId)
          const gap = afterId !== undefined && (stale ? lastId > 0 : afterId + 1 < oldest)
          return [{ backlog, gap, live: Stream.fromQueue(queue) }, state] as const
        }))

    const recent = (limit: number): Effect.Effect<ReadonlyArray<NumberedEvent>> =>
      Effect.map(SynchronizedRef.get(ring), (state) =>
        limit <= 0 ? [] : state.events.slice(Math.max(0, state.events.length - Math.floor(limit))))

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
