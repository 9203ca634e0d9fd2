/**
 * Who gets in, on the real control server: the Bearer scheme in any case, the status page's cookie login
 * (token or one-time link) with its page key, which the cookie alone never replaces, logout, `/readyz` and `/metrics` without the token, and
 * 405 with `Allow` on a known path.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readStream, startControlHost } from "./control/controlHost.js"

const cookieOf = (setCookie: string | null): string => (setCookie ?? "").split(";")[0] ?? ""

describe("control API: auth", () => {
  it.scopedLive("matches the Bearer scheme case-insensitively, and nothing but Bearer", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
        expect((yield* host.open("/v1/components", { headers: { authorization: `${scheme} ${host.token}` } })).status).toBe(200)
      }
      expect((yield* host.open("/v1/components", { headers: { authorization: `Basic ${host.token}` } })).status).toBe(401)
      expect((yield* host.open("/v1/components", { headers: { authorization: host.token } })).status).toBe(401)
      // The lean hook route shares the rule.
      const invoke = yield* host.open("/v1/hooks/ingress/invoke", {
        method: "POST",
        headers: { authorization: `bearer ${host.token}`, "content-type": "application/json" },
        body: JSON.stringify({ id: "e-1", subject: "alice", payload: {} })
      })
      expect(invoke.status).toBe(200)
      expect(JSON.parse(invoke.body)).toMatchObject({ decision: { decision: "allow" } })
    }))

  it.scopedLive("logs in with the token for an HttpOnly SameSite=Strict cookie and a page key; the cookie needs the key; logout ends it", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const wrong = yield* host.open("/v1/session", { method: "POST", body: JSON.stringify({ token: "nope" }), headers: { "content-type": "application/json" } })
      expect(wrong.status).toBe(401)
      expect(wrong.headers.get("set-cookie")).toBeNull()
      const login = yield* host.open("/v1/session", {
        method: "POST",
        body: JSON.stringify({ token: host.token }),
        headers: { "content-type": "application/json" }
      })
      expect(login.status).toBe(200)
      const setCookie = login.headers.get("set-cookie") ?? ""
      expect(setCookie).toMatch(/^corral_session=[A-Za-z0-9_-]{43};/)
      expect(setCookie).toContain("HttpOnly")
      expect(setCookie).toContain("SameSite=Strict")
      expect(setCookie).toContain("Path=/")
      const { key } = JSON.parse(login.body) as { key: string }
      expect(Buffer.from(key, "base64url").length).toBe(32)
      expect(setCookie).not.toContain(key)
      const cookie = { cookie: cookieOf(setCookie) }
      const page = { ...cookie, "x-corral-page": key }

      expect((yield* host.open("/v1/components", { headers: page })).status).toBe(200)
      // The old constant header is no key; nor is another session's key.
      const other = JSON.parse((yield* host.open("/v1/session", {
        method: "POST",
        body: JSON.stringify({ token: host.token }),
        headers: { "content-type": "application/json" }
      })).body) as { key: string }
      for (const given of ["1", other.key]) {
        const forged = yield* host.open("/v1/components/middleware.arca/restart", { method: "POST", headers: { ...cookie, "x-corral-page": given } })
        expect(forged.status).toBe(401)
        expect(JSON.parse(forged.body)).toMatchObject({ error: "unauthorized", message: expect.stringContaining("log in again") })
      }
      const forgedHook = yield* host.open("/v1/hooks/ingress/invoke", {
        method: "POST",
        headers: { ...cookie, "content-type": "application/json" },
        body: JSON.stringify({ id: "e-1", subject: "alice", payload: {} })
      })
      expect(forgedHook.status).toBe(401)
      expect(forgedHook.body).toContain("log in again")
      const hookFromPage = yield* host.open("/v1/hooks/ingress/invoke", {
        method: "POST",
        headers: { ...page, "content-type": "application/json" },
        body: JSON.stringify({ id: "e-2", subject: "alice", payload: {} })
      })
      expect(hookFromPage.status).toBe(200)
      const fromPage = yield* host.open("/v1/components/middleware.arca/restart", { method: "POST", headers: page })
      expect(fromPage.status).toBe(202)

      const logout = yield* host.open("/v1/session", { method: "DELETE", headers: page })
      expect(logout.status).toBe(204)
      expect(logout.headers.get("set-cookie")).toContain("Max-Age=0")
      expect((yield* host.open("/v1/components", { headers: page })).status).toBe(401)
    }))

  it.scopedLive("the cookie alone, as a server on another port would replay it, opens nothing; with the page key it does", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const login = yield* host.open("/v1/session", {
        method: "POST",
        body: JSON.stringify({ token: host.token }),
        headers: { "content-type": "application/json" }
      })
      const cookie = { cookie: cookieOf(login.headers.get("set-cookie")) }
      const { key } = JSON.parse(login.body) as { key: string }
      const replay = { ...cookie, "x-corral-page": "1" }

      // GET is refused too: reading the components or the events is the operator's.
      const list = yield* host.open("/v1/components", { headers: cookie })
      expect(list.status).toBe(401)
      expect(list.headers.get("www-authenticate")).toBe("Bearer")
      expect(JSON.parse(list.body)).toMatchObject({ error: "unauthorized", message: expect.stringContaining("log in again") })
      expect((yield* host.open("/v1/components", { headers: replay })).status).toBe(401)
      const events = yield* Effect.promise(() => readStream(host.port, "/v1/events", cookie, { timeoutMs: 2_000 }))
      expect(events.status).toBe(401)
      // The key in the query counts only on the event stream.
      expect((yield* host.open(`/v1/components?page_key=${key}`, { headers: cookie })).status).toBe(401)
      const restart = yield* host.open("/v1/components/middleware.arca/restart", { method: "POST", headers: replay })
      expect(restart.status).toBe(401)

      const page = { ...cookie, "x-corral-page": key }
      expect((yield* host.open("/v1/components", { headers: page })).status).toBe(200)
      const stream = (path: string, headers: Record<string, string>) =>
        Effect.promise(() => readStream(host.port, path, headers, { until: (text) => text.includes(": connected"), timeoutMs: 2_000 }))
      expect((yield* stream("/v1/events", page)).status).toBe(200)
      expect((yield* stream(`/v1/events?page_key=${encodeURIComponent(key)}`, cookie)).status).toBe(200)
      expect((yield* host.open("/v1/components/middleware.arca/restart", { method: "POST", headers: page })).status).toBe(202)
    }))

  it.scopedLive("a one-time login link logs in once, then is refused", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const created = yield* host.call("/v1/login-links", { method: "POST" })
      expect(created.status).toBe(201)
      const { expires_at, url } = JSON.parse(created.body) as { url: string; expires_at: string }
      expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${host.port}/login\\?code=[A-Za-z0-9_-]+$`))
      const lifetime = Date.parse(expires_at) - Date.now()
      expect(lifetime).toBeGreaterThan(50_000)
      expect(lifetime).toBeLessThanOrEqual(60_000)
      const link = new URL(url)
      const first = yield* host.open(`${link.pathname}${link.search}`)
      expect(first.status).toBe(303)
      // The page key rides in the fragment, which the browser keeps to itself.
      const key = /^\/#key=([A-Za-z0-9_-]{43})$/.exec(first.headers.get("location") ?? "")?.[1] ?? ""
      expect(Buffer.from(key, "base64url").length).toBe(32)
      const cookie = cookieOf(first.headers.get("set-cookie"))
      expect((yield* host.open("/v1/components", { headers: { cookie } })).status).toBe(401)
      expect((yield* host.open("/v1/components", { headers: { cookie, "x-corral-page": key } })).status).toBe(200)
      const second = yield* host.open(`${link.pathname}${link.search}`)
      expect(second.status).toBe(401)
      expect(second.headers.get("content-type")).toContain("text/html")
      expect(second.headers.get("set-cookie")).toBeNull()
      expect((yield* host.open("/login?code=made-up")).status).toBe(401)
    }))
})

describe("control API: open routes say nothing", () => {
  it.scopedLive("/readyz without the token is one status word; with it, the details", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const anonymous = yield* host.open("/readyz")
      expect(anonymous.status).toBe(200)
      expect(JSON.parse(anonymous.body)).toEqual({ status: "ready" })
      const detailed = yield* host.call("/readyz")
      expect(JSON.parse(detailed.body)).toEqual({
        status: "ready",
        ready: true,
        draining: false,
        alarmed_routes: [],
        components_not_ready: [],
        hooks_blocked: []
      })
      expect(JSON.parse((yield* host.open("/healthz")).body)).toEqual({ status: "ok" })
    }))

  it.scopedLive("/metrics needs the token by default", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const anonymous = yield* host.open("/metrics")
      expect(anonymous.status).toBe(401)
      expect(anonymous.body).not.toContain("corral_")
      const authorized = yield* host.call("/metrics")
      expect(authorized.status).toBe(200)
      expect(authorized.headers.get("content-type")).toContain("text/plain")
      expect(authorized.body).toContain("server=\"control\"")
    }))

  it.scopedLive("/metrics is open with host.control.metrics_auth: false", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost({ host: { control: { metrics_auth: false } } })
      const anonymous = yield* host.open("/metrics")
      expect(anonymous.status).toBe(200)
      expect(anonymous.body).toContain("server=\"control\"")
      // Only /metrics opens: the API still needs the token.
      expect((yield* host.open("/v1/components")).status).toBe(401)
    }))

  it.scopedLive("answers 405 with Allow to an unknown method on a known path, 404 on an unknown path", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const put = yield* host.call("/v1/components", { method: "PUT" })
      expect(put.status).toBe(405)
      expect(put.headers.get("allow")).toBe("GET, HEAD")
      expect(JSON.parse(put.body)).toMatchObject({ error: "method_not_allowed" })
      const getStart = yield* host.open("/v1/components/middleware.dator/start")
      expect(getStart.status).toBe(405)
      expect(getStart.headers.get("allow")).toBe("POST")
      const session = yield* host.open("/v1/session", { method: "PATCH" })
      expect(session.status).toBe(405)
      expect(session.headers.get("allow")).toBe("POST, DELETE")
      const junk = yield* host.open("/no/such/thing")
      expect(junk.status).toBe(404)
      expect(JSON.parse(junk.body)).toMatchObject({ error: "not_found" })
    }))

  it.scopedLive("answers 400 naming the field to a bad parameter or body, never a 500 or an alarm", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const tail = yield* host.call("/v1/components/middleware.dator/logs?tail=10001")
      expect(tail.status).toBe(400)
      expect(JSON.parse(tail.body)).toMatchObject({ error: "bad_request", message: expect.stringContaining("tail: Expected a number between 0 and 10000") })
      const missing = yield* host.open("/v1/session", { method: "POST", body: "{}", headers: { "content-type": "application/json" } })
      expect(JSON.parse(missing.body)).toMatchObject({ error: "bad_request", message: "token: is missing" })
      for (let i = 0; i < 6; i++) {
        const garbled = yield* host.open("/v1/session", { method: "POST", body: "{not json", headers: { "content-type": "application/json" } })
        expect(garbled.status).toBe(400)
        expect(JSON.parse(garbled.body)).toMatchObject({ error: "bad_request" })
      }
      // The client's mistakes are not the server's: no handler error, no alarmed route.
      expect((yield* host.control.server.metrics).handler_errors_total).toBe(0)
      expect((yield* host.open("/readyz")).status).toBe(200)
    }))
})
