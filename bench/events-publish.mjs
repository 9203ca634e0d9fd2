// What publishing one host event costs (every hook invocation publishes one): the host's event feed
// (`makeHostEvents`) against a bare sliding `PubSub.publish` in the same run, and a ring of 10 against a
// ring of 20,000 (publishing must not copy or lock the ring). Best of 3 rounds after a warm-up round.
// Needs `npm run build`. Prints one BENCH_JSON line.
import { Effect, PubSub } from "effect"
import { makeHostEvents } from "../dist/layers/host/HostEvents.js"

const event = {
  _tag: "invocation", at: "2024-01-01T00:00:00.000Z", hook: "ingress", envelope_id: "e", subject: "user:1",
  decision: { decision: "allow" }, steps: [], duration_ms: 1
}

const microsPerRun = (effect, count) =>
  Effect.gen(function*() {
    let best = Number.POSITIVE_INFINITY
    for (let round = 0; round < 4; round++) {
      const started = performance.now()
      for (let i = 0; i < count; i++) yield* effect
      const micros = ((performance.now() - started) * 1000) / count
      if (round > 0) best = Math.min(best, micros)
    }
    return best
  })

const result = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const feed = yield* makeHostEvents(1000)
  yield* feed.subscribe(undefined)
  const bare = yield* PubSub.sliding(1000)
  yield* PubSub.subscribe(bare)
  const small = yield* makeHostEvents(10)
  const large = yield* makeHostEvents(20_000)
  for (let i = 0; i < 20_000; i++) yield* large.publish(event)
  return {
    feed_publish_us: yield* microsPerRun(feed.publish(event), 20_000),
    bare_pubsub_publish_us: yield* microsPerRun(PubSub.publish(bare, event), 20_000),
    ring_10_publish_us: yield* microsPerRun(small.publish(event), 5_000),
    ring_20000_publish_us: yield* microsPerRun(large.publish(event), 5_000)
  }
})))
console.log(`feed publish ${result.feed_publish_us.toFixed(2)} µs, bare PubSub ${result.bare_pubsub_publish_us.toFixed(2)} µs; ring of 10: ${result.ring_10_publish_us.toFixed(2)} µs, ring of 20000: ${result.ring_20000_publish_us.toFixed(2)} µs`)
console.log(`BENCH_JSON ${JSON.stringify(result)}`)
