/**
 * Component commands and readiness on the real control server: 202 with the target at once, the settled
 * view with `?wait=1`, 409 for a transition the component cannot make, and `/readyz` 503 (naming the hook
 * with the token) while a `fail_closed` hook's supervised component is stopped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startControlHost } from "./control/controlHost.js"

const withInProcess = { components: { "local.fn": { kind: "in_process", function: "allow" } } }

describe("control API: component commands", () => {
  it.scopedLive("answers 202 with the target at once, and with ?wait=1 the settled component", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const accepted = yield* host.call("/v1/components/middleware.dator/restart", { method: "POST" })
      expect(accepted.status).toBe(202)
      const body = JSON.parse(accepted.body)
      expect(body.target).toBe("ready")
      expect(body.component).toMatchObject({ id: "middleware.dator" })
      expect(body.reached).toBeUndefined()

      const stopped = yield* host.call("/v1/components/middleware.dator/stop?wait=1", { method: "POST" })
      expect(stopped.status).toBe(200)
      expect(JSON.parse(stopped.body)).toMatchObject({ target: "stopped", reached: true, component: { phase: "stopped", pid: null } })
      const started = yield* host.call("/v1/components/middleware.dator/start?wait=1&timeout_ms=10000", { method: "POST" })
      expect(started.status).toBe(200)
      expect(JSON.parse(started.body)).toMatchObject({ target: "ready", reached: true, component: { phase: "ready", pid: expect.any(Number) } })
    }))

  it.scopedLive("answers 409 to a transition the component cannot make, 404 to an unknown one", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost(withInProcess)
      const refused = yield* host.call("/v1/components/local.fn/restart", { method: "POST" })
      expect(refused.status).toBe(409)
      expect(JSON.parse(refused.body)).toEqual({ error: "impossible_transition", message: expect.stringContaining("cannot restart local.fn") })
      expect((yield* host.call("/v1/components/local.fn/stop?wait=1", { method: "POST" })).status).toBe(409)
      const unknown = yield* host.call("/v1/components/no.such/start", { method: "POST" })
      expect(unknown.status).toBe(404)
      expect(JSON.parse(unknown.body)).toMatchObject({ error: "not_found", message: expect.stringContaining("no.such") })
    }))
})

describe("control API: readiness tells the truth", () => {
  it.scopedLive("/readyz is 503 while a fail_closed hook's component is stopped, and names it with the token", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      expect((yield* host.open("/readyz")).status).toBe(200)
      expect((yield* host.call("/v1/components/middleware.dator/stop?wait=1", { method: "POST" })).status).toBe(200)

      const anonymous = yield* host.open("/readyz")
      expect(anonymous.status).toBe(503)
      expect(JSON.parse(anonymous.body)).toEqual({ status: "not_ready" })
      const detailed = yield* host.call("/readyz")
      expect(detailed.status).toBe(503)
      expect(JSON.parse(detailed.body)).toMatchObject({
        status: "not_ready",
        ready: false,
        hooks_blocked: [{ hook: "ingress", component: "middleware.dator", phase: "stopped" }]
      })
      // And the hook really would deny: readiness says what traffic would see.
      const invoked = yield* host.call("/v1/hooks/ingress/invoke", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "e-1", subject: "alice", payload: {} })
      })
      expect(JSON.parse(invoked.body)).toMatchObject({ decision: { decision: "deny" } })

      expect((yield* host.call("/v1/components/middleware.dator/start?wait=1", { method: "POST" })).status).toBe(200)
      expect((yield* host.open("/readyz")).status).toBe(200)
    }))
})
