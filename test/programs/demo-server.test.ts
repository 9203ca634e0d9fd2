import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { get, keepAliveAgent, request } from "../support/rawHttp.js"
import { startDemo } from "../support/demoProcess.js"
import { somethingListensOn } from "../support/procfs.js"

describe.each(["handler", "httpapp"] as const)("demo server through the %s interface", (iface) => {
  it.scopedLive("prints its URL first, serves its routes, and on SIGTERM drains, prints final metrics and exits 0", () =>
    Effect.gen(function*() {
      const demo = yield* startDemo(["--interface", iface, "--max-in-flight", "64", "--max-connections", "64"])
      expect(JSON.parse(demo.lines[0] ?? "")).toMatchObject({ event: "listening", url: `http://127.0.0.1:${demo.port}` })

      const hello = yield* Effect.promise(() => request(demo.port, "/hello"))
      expect(hello.status).toBe(200)
      expect(JSON.parse(hello.body)).toEqual({ hello: "world" })
      expect((yield* Effect.promise(() => request(demo.port, "/sleep?ms=20"))).status).toBe(200)

      // 200 concurrent increments of actor-owned state: exactly 200, no lost update.
      const agent = keepAliveAgent(32)
      yield* Effect.promise(() => Promise.all(Array.from({ length: 200 }, () => get(demo.port, "/counter", agent))))
      agent.destroy()
      const counter = yield* Effect.promise(() => request(demo.port, "/counter"))
      expect(JSON.parse(counter.body)).toEqual({ counter: 201 })

      const defect = yield* Effect.promise(() => request(demo.port, "/defect"))
      expect(defect.status).toBe(500)
      expect(JSON.parse(defect.body)).toMatchObject({ error: "handler_defect" })

      expect((yield* Effect.promise(() => request(demo.port, "/healthz"))).status).toBe(200)
      expect((yield* Effect.promise(() => request(demo.port, "/readyz"))).status).toBe(200)
      for (let i = 0; i < 5; i++) yield* Effect.promise(() => request(demo.port, "/defect"))
      const red = yield* Effect.promise(() => request(demo.port, "/readyz"))
      expect(red.status).toBe(503)
      expect(JSON.parse(red.body)).toMatchObject({ ready: false, alarmed_routes: [{ route: "/defect" }] })

      const metrics = yield* Effect.promise(() => request(demo.port, "/metrics"))
      expect(metrics.headers["content-type"]).toContain("text/plain")
      for (const name of ["corral_active_connections", "corral_accepted_total", "corral_rejected_over_capacity_total", "corral_handler_errors_total", "corral_handler_timeouts_total", "corral_shutdown_drain_ms", "corral_request_duration_seconds_bucket"]) {
        expect(metrics.body).toContain(name)
      }
      const runtime = JSON.parse((yield* Effect.promise(() => request(demo.port, "/v1/runtime-metrics"))).body) as {
        server: Record<string, unknown>
        resource_pressure: Record<string, unknown>
      }
      expect(runtime.server).toMatchObject({ server: "demo", handler_errors_total: 6 })
      expect(runtime.resource_pressure).toHaveProperty("os_parallelism")
      expect(runtime.resource_pressure).toHaveProperty("event_loop")
      expect(runtime.resource_pressure).toHaveProperty("open_fds")

      // An in-flight request still gets its answer after SIGTERM.
      const slow = request(demo.port, "/sleep?ms=400")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      const code = yield* Effect.promise(() => demo.stop("SIGTERM"))
      expect((yield* Effect.promise(() => slow)).status).toBe(200)
      expect(code).toBe(0)
      const stopped = JSON.parse(demo.lines.at(-1) ?? "") as Record<string, unknown>
      expect(stopped).toMatchObject({ event: "stopped", active_connections: 0, in_flight: 0, handler_errors_total: 6 })
      expect(stopped["shutdown_drain_ms"]).toBeGreaterThan(0)
    }))
})

describe("demo server limits", () => {
  it.scopedLive("honours --max-in-flight and --handler-timeout-ms", () =>
    Effect.gen(function*() {
      const demo = yield* startDemo(["--max-in-flight", "1", "--handler-timeout-ms", "200"])
      const slow = request(demo.port, "/sleep?ms=5000")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      const refused = yield* Effect.promise(() => request(demo.port, "/hello"))
      expect(refused.status).toBe(503)
      expect((yield* Effect.promise(() => slow)).status).toBe(504)
      expect((yield* Effect.promise(() => request(demo.port, "/hello"))).status).toBe(200)
    }))
})

describe("demo server signals", () => {
  it.scopedLive("SIGUSR1 opens no debugger: the demo keeps serving and the inspector's port stays closed", () =>
    Effect.gen(function*() {
      // The inspector's default port, 9229 (0x2405).
      const inspectorListening = () => somethingListensOn(9229)
      const before = inspectorListening()
      const demo = yield* startDemo([])
      demo.child.kill("SIGUSR1")
      yield* Effect.sleep("500 millis")
      expect(demo.child.exitCode).toBeNull()
      if (!before) expect(inspectorListening()).toBe(false)
      expect((yield* Effect.promise(() => request(demo.port, "/hello"))).status).toBe(200)
    }))
})
