/**
 * The control API's long answers on the real server: a component's log tail and follow (bounded in lines
 * and in time), the event stream with `Last-Event-ID` resume, the gap event and heartbeats, and the status
 * page's files (no traversal).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readStream, startControlHost, testTiming } from "./control/controlHost.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The ids of the `id:` lines of an SSE text. */
const idsIn = (text: string): ReadonlyArray<number> => [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))

describe("control API: logs", () => {
  it.scopedLive("answers the last N lines as text, at most 10000, and follows appended lines until its time is up", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const log = Path.join(host.dataDir, "logs", "middleware.dator.log")
      Fs.mkdirSync(Path.dirname(log), { recursive: true })
      Fs.writeFileSync(log, Array.from({ length: 12_000 }, (_, i) => `line ${i}`).join("\n") + "\n")

      const three = yield* host.call("/v1/components/middleware.dator/logs?tail=3")
      expect(three.status).toBe(200)
      expect(three.headers.get("content-type")).toBe("text/plain; charset=utf-8")
      expect(three.body).toBe("line 11997\nline 11998\nline 11999\n")
      expect((yield* host.call("/v1/components/middleware.dator/logs")).body.split("\n").length - 1).toBe(100)
      expect((yield* host.call("/v1/components/middleware.dator/logs?tail=10000")).body.split("\n").length - 1).toBe(10_000)
      expect((yield* host.call("/v1/components/middleware.dator/logs?tail=10001")).status).toBe(400)
      expect((yield* host.call("/v1/components/no.such/logs")).status).toBe(404)

      const started = Date.now()
      const followed = yield* Effect.promise(() =>
        readStream(host.port, "/v1/components/middleware.dator/logs?tail=1&follow=1", host.auth, {
          timeoutMs: testTiming.maxStreamMs + 3_000,
          whileOpen: async () => {
            await sleep(200)
            Fs.appendFileSync(log, "appended one\n")
            await sleep(200)
            Fs.appendFileSync(log, "appended two\n")
          }
        }))
      expect(followed.status).toBe(200)
      expect(followed.text).toBe("line 11999\nappended one\nappended two\n")
      // The follow is bounded: the server ended it after maxStreamMs, the client did not have to.
      expect(followed.ended).toBe(true)
      expect(Date.now() - started).toBeGreaterThanOrEqual(testTiming.maxStreamMs - 100)
    }))
})

describe("control API: events", () => {
  it.scopedLive("streams events with ids, resumes after Last-Event-ID, sends a gap when the ring lost some, and heartbeats", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const headers = { ...host.auth, accept: "text/event-stream" }
      const live = yield* Effect.promise(() =>
        readStream(host.port, "/v1/events", headers, {
          until: (text) => /event: lifecycle\ndata: .*"to":"ready"/.test(text) && text.includes(": heartbeat"),
          timeoutMs: 5_000,
          whileOpen: () => fetch(`http://127.0.0.1:${host.port}/v1/components/middleware.arca/restart`, { method: "POST", headers: host.auth })
        }))
      expect(live.status).toBe(200)
      expect(live.headers["content-type"]).toContain("text/event-stream")
      expect(live.text).toMatch(/^id: \d+\nevent: lifecycle\ndata: \{.*"_tag":"lifecycle".*"component":"middleware.arca".*\}\n\n/m)
      expect(live.text).toContain(": heartbeat\n\n")
      const seen = idsIn(live.text)
      expect(seen.length).toBeGreaterThan(1)

      // Resuming after the first id seen replays exactly the ones after it, in order, with no gap.
      const first = seen[0] ?? 0
      const resumed = yield* Effect.promise(() =>
        readStream(host.port, "/v1/events", { ...headers, "last-event-id": String(first) }, {
          until: (text) => idsIn(text).includes(seen.at(-1) ?? 0),
          timeoutMs: 5_000
        }))
      expect(resumed.text).not.toContain("event: gap")
      expect(idsIn(resumed.text).slice(0, seen.length - 1)).toEqual(seen.slice(1))
      const byQuery = yield* Effect.promise(() =>
        readStream(host.port, `/v1/events?last_event_id=${first}`, headers, { until: (text) => idsIn(text).length > 0, timeoutMs: 5_000 }))
      expect(idsIn(byQuery.text)[0]).toBe(seen[1])

      // Push the resume point out of the ring (it holds 1000).
      for (let i = 0; i < 1_100; i++) {
        yield* host.events.publish({ _tag: "health", at: new Date().toISOString(), component: "middleware.arca", ok: true, detail: `check ${i}` })
      }
      const oldest = (yield* host.events.recent(1_000))[0]?.id ?? 0
      const gapped = yield* Effect.promise(() =>
        readStream(host.port, "/v1/events", { ...headers, "last-event-id": String(first) }, {
          until: (text) => idsIn(text).length > 0,
          timeoutMs: 5_000
        }))
      expect(gapped.text).toContain(`event: gap\ndata: {"missed_before":${oldest}}\n\n`)
      expect(gapped.text.indexOf("event: gap")).toBeLessThan(gapped.text.indexOf("id: "))
      expect(idsIn(gapped.text)[0]).toBe(oldest)
    }))

  it.scopedLive("keeps a stream open past the handler deadline, and refuses streams past their share of the connections", () =>
    Effect.gen(function*() {
      // One stream slot (a quarter of 4 connections), and a handler deadline far shorter than a stream.
      const host = yield* startControlHost({ host: { control: { max_connections: 4, max_hook_invocations: 2, handler_timeout_ms: 300 } } })
      const headers = { ...host.auth, accept: "text/event-stream" }
      let refused: { status: number; retryAfter: string | null; body: string } | undefined
      const first = yield* Effect.promise(() =>
        readStream(host.port, "/v1/events", headers, {
          timeoutMs: 1_500,
          whileOpen: async () => {
            await sleep(100)
            const second = await fetch(`http://127.0.0.1:${host.port}/v1/events`, { headers })
            refused = { status: second.status, retryAfter: second.headers.get("retry-after"), body: await second.text() }
          }
        }))
      expect(first.status).toBe(200)
      // Heartbeats kept coming well after 300 ms: the deadline bounds producing the answer, not streaming it.
      expect(first.text.split(": heartbeat").length - 1).toBeGreaterThanOrEqual(5)
      expect(refused).toMatchObject({ status: 503, retryAfter: "1" })
      expect(JSON.parse(refused?.body ?? "{}")).toMatchObject({ error: "streams_busy" })
      // The slot came back when the first client went.
      yield* Effect.promise(() => sleep(100))
      const again = yield* Effect.promise(() => readStream(host.port, "/v1/events", headers, { until: (text) => text.length > 0, timeoutMs: 2_000 }))
      expect(again.status).toBe(200)
    }))

  it.scopedLive("answers the recent events as JSON, at most the limit", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const recent = yield* host.call("/v1/events/recent?limit=2")
      expect(recent.status).toBe(200)
      const { events } = JSON.parse(recent.body) as { events: ReadonlyArray<{ id: number; event: { _tag: string } }> }
      expect(events.length).toBe(2)
      expect(events[1]?.id).toBe((events[0]?.id ?? 0) + 1)
      expect(events[0]?.event._tag).toEqual(expect.any(String))
      expect((yield* host.call("/v1/events/recent?limit=1001")).status).toBe(400)
    }))
})

describe("control API: the status page's files", () => {
  it.scopedLive("serves / and /assets/<name> from assets/status with their content types, and nothing outside it", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const index = yield* host.open("/")
      expect(index.status).toBe(200)
      expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(index.headers.get("cache-control")).toBe("no-store")
      expect(index.body).toContain("<html")
      const css = yield* host.open("/assets/status.css")
      expect(css.status).toBe(200)
      expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8")
      const js = yield* host.open("/assets/status.js")
      expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
      for (const path of ["/assets/..%2F..%2Fpackage.json", "/assets/.hidden", "/assets/no-such.js", "/assets/%2Fetc%2Fpasswd"]) {
        const refused = yield* host.open(path)
        expect({ path, status: refused.status }).toEqual({ path, status: 404 })
      }
      // No data before a login: the page itself carries no component names.
      expect(index.body).not.toContain("middleware.dator")
    }))
})
