import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Ref, Stream } from "effect"
import { makeHostEvents, withHostEvents } from "../../../src/layers/host/HostEvents.js"
import { type HostEvent, HostEvents, type NumberedEvent } from "../../../src/services/host/HostEvents.js"
import { type InvocationRecord, type LifecycleEvent, TraceLog } from "../../../src/services/host/Traces.js"

/** A health event whose detail tells the test which publish it came from. */
const health = (detail: string): HostEvent => ({ _tag: "health", at: "2024-01-01T00:00:00.000Z", component: "c", ok: true, detail })

const ids = (events: ReadonlyArray<NumberedEvent>) => events.map((numbered) => numbered.id)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const publishMany = (publish: (event: HostEvent) => Effect.Effect<void>, count: number, label = "e") =>
  Effect.forEach(range(1, count), (i) => publish(health(`${label}${i}`)), { discard: true })

describe("makeHostEvents", () => {
  it.scoped("numbers events from 1 in publish order and replays them after the id asked from", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(10)
      yield* publishMany(events.publish, 5)
      const all = yield* events.subscribe(0)
      expect(ids(all.backlog)).toEqual([1, 2, 3, 4, 5])
      expect(all.backlog.map((numbered) => numbered.event._tag === "health" && numbered.event.detail)).toEqual(["e1", "e2", "e3", "e4", "e5"])
      expect(all.gap).toBe(false)
      const resumed = yield* events.subscribe(3)
      expect(ids(resumed.backlog)).toEqual([4, 5])
      expect(resumed.gap).toBe(false)
    }))

  it.scoped("a resume continues on the live stream with the next ids", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(10)
      yield* publishMany(events.publish, 3)
      const subscription = yield* events.subscribe(2)
      yield* publishMany(events.publish, 2, "late")
      const live = yield* Stream.runCollect(Stream.take(subscription.live, 2))
      expect(ids(subscription.backlog)).toEqual([3])
      expect(ids(Chunk.toReadonlyArray(live))).toEqual([4, 5])
    }))

  it.scoped("a subscriber without an id gets only live events", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(10)
      yield* publishMany(events.publish, 3)
      const subscription = yield* events.subscribe(undefined)
      yield* events.publish(health("new"))
      expect(subscription.backlog).toEqual([])
      expect(subscription.gap).toBe(false)
      const live = yield* Stream.runCollect(Stream.take(subscription.live, 1))
      expect(ids(Chunk.toReadonlyArray(live))).toEqual([4])
    }))

  it.scoped("reports a gap when events after the id already left the ring, and replays what it holds", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(3)
      yield* publishMany(events.publish, 5)
      const late = yield* events.subscribe(1)
      expect(ids(late.backlog)).toEqual([3, 4, 5])
      expect(late.gap).toBe(true)
      const justInTime = yield* events.subscribe(2)
      expect(ids(justInTime.backlog)).toEqual([3, 4, 5])
      expect(justInTime.gap).toBe(false)
      const upToDate = yield* events.subscribe(5)
      expect(upToDate.backlog).toEqual([])
      expect(upToDate.gap).toBe(false)
    }))

  it.scoped("an id from an earlier host life (newer than any numbered) replays the whole ring as a gap", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(3)
      yield* publishMany(events.publish, 2)
      const stale = yield* events.subscribe(900)
      expect(ids(stale.backlog)).toEqual([1, 2])
      expect(stale.gap).toBe(true)
    }))

  it.scoped("an id from an earlier host life on an empty ring is no gap: there is nothing to replay", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(3)
      const stale = yield* events.subscribe(900)
      expect(stale.backlog).toEqual([])
      expect(stale.gap).toBe(false)
    }))

  it.scoped("recent answers the newest events, oldest first", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(10)
      yield* publishMany(events.publish, 7)
      expect(ids(yield* events.recent(3))).toEqual([5, 6, 7])
      expect(ids(yield* events.recent(100))).toEqual(range(1, 7))
      expect(yield* events.recent(0)).toEqual([])
    }))

  it.scoped("keeps memory bounded: after 20000 events the ring holds only its capacity", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(5)
      yield* publishMany(events.publish, 20_000)
      expect(ids(yield* events.recent(1000))).toEqual(range(19_996, 20_000))
      const subscription = yield* events.subscribe(0)
      expect(ids(subscription.backlog)).toEqual(range(19_996, 20_000))
      expect(subscription.gap).toBe(true)
    }))

  it.scopedLive("a subscriber that never reads blocks no publisher and keeps only the newest events", () =>
    Effect.gen(function*() {
      const events = yield* makeHostEvents(4)
      const idle = yield* events.subscribe(undefined)
      yield* publishMany(events.publish, 100).pipe(Effect.timeout("5 seconds"))
      const kept = yield* Stream.runCollect(Stream.take(idle.live, 4))
      expect(ids(Chunk.toReadonlyArray(kept))).toEqual([97, 98, 99, 100])
    }))

  it.scopedLive("loses and repeats nothing when subscribers join while many fibers publish", () =>
    Effect.gen(function*() {
      const publishers = 16
      const perPublisher = 250
      const total = publishers * perPublisher
      const events = yield* makeHostEvents(total)
      const subscribers = 8
      const seen = yield* Effect.all(
        [
          Effect.forEach(range(1, publishers), (p) =>
            Effect.forEach(range(1, perPublisher), (i) => Effect.zipRight(events.publish(health(`${p}.${i}`)), Effect.yieldNow()), {
              discard: true
            }), { concurrency: "unbounded", discard: true }),
          Effect.forEach(range(1, subscribers), (s) =>
            Effect.gen(function*() {
              // Subscribers join at different moments of the flood, each from the id it last knew.
              yield* Effect.repeatN(Effect.yieldNow(), s * 37)
              const known = (yield* events.recent(1))[0]?.id ?? 0
              const afterId = Math.max(0, known - s * 11)
              const subscription = yield* events.subscribe(afterId)
              const wanted = total - afterId - subscription.backlog.length
              // Bounded wait: a lost event shows as a short list below rather than a hang.
              const live = yield* Stream.runCollect(Stream.take(subscription.live, wanted).pipe(Stream.interruptAfter("5 seconds")))
              return { afterId, gap: subscription.gap, received: [...ids(subscription.backlog), ...ids(Chunk.toReadonlyArray(live))] }
            }), { concurrency: "unbounded" })
        ],
        { concurrency: "unbounded" }
      )
      for (const subscriber of seen[1]) {
        expect(subscriber.gap).toBe(false)
        expect(subscriber.received).toEqual(range(subscriber.afterId + 1, total))
      }
      expect(new Set(seen[1].map((subscriber) => subscriber.afterId)).size).toBeGreaterThan(1)
    }))
})

describe("withHostEvents", () => {
  it.scoped("publishes every lifecycle event and invocation record after writing it to the trace", () =>
    Effect.gen(function*() {
      const written = yield* Ref.make<ReadonlyArray<string>>([])
      const traces = Layer.succeed(TraceLog, {
        lifecycle: (event) => Ref.update(written, (all) => [...all, `lifecycle:${event.component}`]),
        invocation: (record) => Ref.update(written, (all) => [...all, `invocation:${record.hook}`])
      })
      const events = yield* makeHostEvents(10)
      const context = yield* Layer.build(withHostEvents(traces).pipe(Layer.provide(Layer.succeed(HostEvents, events))))
      const lifecycle: LifecycleEvent = {
        at: "2024-01-01T00:00:00.000Z",
        component: "middleware.dator",
        from: "starting",
        to: "ready",
        reason: "ready",
        pid: 42
      }
      const record: InvocationRecord = {
        at: "2024-01-01T00:00:01.000Z",
        hook: "ingress",
        envelope_id: "env-1",
        subject: "user:1",
        decision: { decision: "allow" },
        failure_policy: "fail_closed",
        steps: [{ component: "middleware.dator", outcome: "allow", duration_ms: 3 }],
        duration_ms: 4
      }
      yield* Effect.flatMap(TraceLog, (log) => Effect.zipRight(log.lifecycle(lifecycle), log.invocation(record))).pipe(
        Effect.provide(context)
      )
      expect(yield* Ref.get(written)).toEqual(["lifecycle:middleware.dator", "invocation:ingress"])
      expect((yield* events.recent(10)).map((numbered) => numbered.event)).toEqual([
        { _tag: "lifecycle", ...lifecycle },
        {
          _tag: "invocation",
          at: record.at,
          hook: "ingress",
          envelope_id: "env-1",
          subject: "user:1",
          decision: { decision: "allow" },
          steps: record.steps,
          duration_ms: 4
        }
      ])
    }))
})
