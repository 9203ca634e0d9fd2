/**
 * `/metrics` of a real host process (`npm run build` first): component phases, restarts, hook series, the
 * process series, and a flood of junk paths that must not grow the series count.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, type HostProcess, killPid, makeDataDir, removeDataDirs, startHost } from "../../support/hostProcess.js"
import { waitUntil } from "../../support/rawHttp.js"
import { parseSamples } from "../../support/prometheusText.js"

afterAll(removeDataDirs)

/** The body of `GET /v1/events/recent`, as far as this test reads it. */
interface RecentEvents {
  readonly events: ReadonlyArray<{
    readonly id: number
    readonly event: { readonly _tag: string; readonly component?: string; readonly to?: string; readonly envelope_id?: string }
  }>
}

/** `GET /metrics` with the token (the control API asks for it by default). */
const scrape = async (host: HostProcess): Promise<string> => {
  const response = await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${host.token}` } })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${text}`)
  return text
}

/** One junk request of each kind: unknown paths, unknown ids and hooks, with and without the token, odd methods. */
const junkRequests = (host: HostProcess, n: number): ReadonlyArray<() => Promise<unknown>> => {
  const withToken = { authorization: `Bearer ${host.token}` }
  const call = (path: string, init: RequestInit = {}) => () =>
    fetch(`${host.url}${path}`, init).then((response) => response.arrayBuffer())
  return [
    call(`/junk-${n}/${"x".repeat(n % 50)}`),
    call(`/v1/junk-${n}`, { headers: withToken }),
    call(`/v1/components/junk-${n}`, { headers: withToken }),
    call(`/v1/components/junk-${n}/restart`, { method: "POST", headers: withToken }),
    call(`/v1/components/junk-${n}/logs?tail=${n}`, { headers: withToken }),
    call(`/v1/hooks/junk-${n}/invoke`, { method: "POST", headers: { ...withToken, "content-type": "application/json" }, body: "{}" }),
    call(`/v1/components/junk-${n}`),
    call(`/assets/junk-${n}.js`),
    call(`/metrics/junk-${n}`, { method: "DELETE" }),
    call(`/%ff%fe/junk-${n}?q=${n}`)
  ]
}

/** Runs `requests` at most 16 at a time (the control server's permits stay free for the scrapes). */
const runBounded = (requests: ReadonlyArray<() => Promise<unknown>>) =>
  Effect.forEach(requests, (request) => Effect.promise(request), { concurrency: 16, discard: true })

describe("/metrics of a running host", () => {
  it.scopedLive("shows phases, restarts, hook series and the process series; a junk-path flood adds no series", () =>
    Effect.gen(function*() {
      const host = yield* startHost(makeDataDir())
      const first = parseSamples(yield* Effect.promise(() => scrape(host)))
      for (const id of ["middleware.dator", "middleware.arca"]) {
        expect(first.get(`corral_component_phase{component="${id}",phase="ready"}`)).toBe(1)
        expect(first.get(`corral_component_phase{component="${id}",phase="failed"}`)).toBe(0)
        expect(first.get(`corral_component_restarts_total{component="${id}"}`)).toBe(0)
      }
      expect(first.get(`corral_broker_backends{state="live"}`)).toBe(0)
      expect(first.get(`corral_broker_rejects_total{code="unknown_service"}`)).toBe(0)
      expect(first.get("process_resident_memory_bytes")).toBeGreaterThan(0)
      expect(first.get("process_open_fds")).toBeGreaterThan(0)
      expect(first.get("process_max_fds")).toBeGreaterThan(0)
      expect(first.get("process_cpu_seconds_total")).toBeGreaterThan(0)
      expect(Math.abs((first.get("process_start_time_seconds") ?? 0) - Date.now() / 1000)).toBeLessThan(60)
      expect(first.get(`nodejs_eventloop_delay_seconds{quantile="0.99"}`)).toBeTypeOf("number")

      const invoked = yield* Effect.promise(() =>
        control(host, "POST", "/v1/hooks/ingress/invoke", { id: "m-1", hook: "ingress", subject: "user:1", payload: { text: "hello" } }))
      expect(invoked.status).toBe(200)
      const afterInvoke = parseSamples(yield* Effect.promise(() => scrape(host)))
      const invocations = [...afterInvoke.entries()].filter(([series]) => series.startsWith(`corral_hook_invocations_total{hook="ingress"`))
      expect(invocations.reduce((sum, [, value]) => sum + value, 0)).toBe(1)
      expect(afterInvoke.get(`corral_hook_step_duration_seconds_count{component="middleware.dator",hook="ingress"}`)).toBe(1)

      // Warm-up: one junk request of each kind creates whatever series a kind legitimately adds
      // (the shared unknown-route label, a status class); then 40 more of each must add none.
      yield* runBounded(junkRequests(host, 0))
      const before = yield* Effect.promise(() => scrape(host))
      yield* runBounded(Array.from({ length: 40 }, (_, i) => junkRequests(host, i + 1)).flat())
      const after = yield* Effect.promise(() => scrape(host))
      expect(parseSamples(after).size).toBe(parseSamples(before).size)
      expect(after).not.toContain("junk")

      const dator = host.up.components.find((component) => component.id === "middleware.dator")
      killPid(dator?.pid)
      yield* Effect.promise(() =>
        waitUntil(async () => {
          const samples = parseSamples(await scrape(host))
          return samples.get(`corral_component_restarts_total{component="middleware.dator"}`) === 1 &&
            samples.get(`corral_component_phase{component="middleware.dator",phase="ready"}`) === 1
        }, 15_000)
      )

      // The same lifecycle and invocation records reached the event feed, numbered in order.
      const recent = (yield* Effect.promise(() => control(host, "GET", "/v1/events/recent?limit=1000"))).body as RecentEvents
      const ids = recent.events.map((numbered) => numbered.id)
      expect(ids).toEqual(ids.map((_, i) => (ids[0] ?? 1) + i))
      const datorPhases = recent.events.flatMap(({ event }) =>
        event._tag === "lifecycle" && event.component === "middleware.dator" ? [event.to] : [])
      expect(datorPhases.slice(0, 2)).toEqual(["starting", "ready"])
      expect(datorPhases.slice(-2)).toEqual(["starting", "ready"])
      expect(recent.events.filter(({ event }) => event._tag === "invocation" && event.envelope_id === "m-1")).toHaveLength(1)
    }), 60_000)
})
