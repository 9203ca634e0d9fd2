/**
 * The control API as an attacker on the same machine meets it: a page on a rebound DNS name is refused by
 * its `Host`, every answer carries the browser security headers, bad input is the contract's `{error,
 * message}` (and the OpenAPI document says so), open answers name no directory, and a logout also ends the
 * event streams and log follows its session opened.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readStream, startControlHost, testTiming } from "./control/controlHost.js"

/** One request with an exact `Host` header (fetch would put the URL's own), its body read whole. */
const withHost = (port: number, path: string, host: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
  Effect.promise(() =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = Http.request(
        { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: { ...options.headers, host }, agent: false, timeout: 5_000 },
        (res) => {
          let body = ""
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => (body += chunk))
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
        }
      )
      req.on("timeout", () => req.destroy(new Error(`no answer to ${path} within 5 s`)))
      req.on("error", reject)
      req.end(options.body)
    }))

const cookieOf = (setCookie: string | null): string => (setCookie ?? "").split(";")[0] ?? ""

describe("control API: DNS rebinding", () => {
  it.scopedLive("refuses a Host that is not loopback on every route, the hook fast path included, and serves loopback names on any port", () =>
    Effect.gen(function*() {
      // /metrics open: the one route whose data a rebound page could otherwise read without a credential.
      const host = yield* startControlHost({ host: { control: { metrics_auth: false } } })
      const evil = `evil.example:${host.port}`
      for (const path of ["/", "/readyz", "/healthz", "/metrics", "/v1/openapi.json", "/assets/status.js", "/v1/components"]) {
        const refused = yield* withHost(host.port, path, evil, { headers: host.auth })
        expect({ path, status: refused.status }).toEqual({ path, status: 403 })
        expect(JSON.parse(refused.body)).toMatchObject({ error: "bad_host", message: expect.stringContaining("run/control.json") })
      }
      const invoke = yield* withHost(host.port, "/v1/hooks/ingress/invoke", evil, {
        method: "POST",
        headers: { ...host.auth, "content-type": "application/json" },
        body: JSON.stringify({ id: "e-1", subject: "alice", payload: {} })
      })
      expect(invoke.status).toBe(403)
      expect(JSON.parse(invoke.body)).toMatchObject({ error: "bad_host" })
      // A name that ends like a loopback one is still a name.
      expect((yield* withHost(host.port, "/healthz", "127.0.0.1.evil.example")).status).toBe(403)

      for (const name of [`127.0.0.1:${host.port}`, `localhost:${host.port}`, `LOCALHOST:${host.port}`, `[::1]:${host.port}`, "localhost:9000", "127.0.0.1"]) {
        const served = yield* withHost(host.port, "/v1/components", name, { headers: host.auth })
        expect({ name, status: served.status }).toEqual({ name, status: 200 })
      }
    }))
})

describe("control API: what a browser is told", () => {
  it.scopedLive("every answer is no-store, nosniff, unframable and sends no Referer; the page's files may load only themselves", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const link = new URL(JSON.parse((yield* host.call("/v1/login-links", { method: "POST" })).body).url)
      const answers = {
        page: yield* host.open("/"),
        script: yield* host.open("/assets/status.js"),
        login: yield* host.open(`${link.pathname}${link.search}`),
        refusedLogin: yield* host.open(`${link.pathname}${link.search}`),
        json: yield* host.call("/v1/components"),
        unauthorized: yield* host.open("/v1/components"),
        notFound: yield* host.open("/no/such/route")
      }
      for (const [name, answer] of Object.entries(answers)) {
        const seen = {
          name,
          nosniff: answer.headers.get("x-content-type-options"),
          frames: answer.headers.get("x-frame-options"),
          referrer: answer.headers.get("referrer-policy"),
          cache: answer.headers.get("cache-control"),
          frameAncestors: answer.headers.get("content-security-policy")?.includes("frame-ancestors 'none'")
        }
        expect(seen).toEqual({ name, nosniff: "nosniff", frames: "DENY", referrer: "no-referrer", cache: "no-store", frameAncestors: true })
      }
      expect(answers.login.status).toBe(303)
      expect(answers.page.headers.get("content-security-policy")).toContain("default-src 'self'")
      expect(answers.json.headers.get("content-security-policy")).toContain("default-src 'none'")
    }))

  it.scopedLive("a missing page file is a 404 that names no directory of the machine", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const missing = yield* host.open("/assets/no-such.js")
      expect(missing.status).toBe(404)
      expect(JSON.parse(missing.body)).toMatchObject({ error: "not_found", message: expect.stringContaining("no-such.js") })
      expect(missing.body).not.toContain(Path.sep + "assets" + Path.sep)
      expect(missing.body).not.toContain(process.cwd())
    }))
})

describe("control API: bad input", () => {
  it.scopedLive("answers 400 with exactly {error, message}, each bad field named once, and the OpenAPI document declares that shape", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const tail = yield* host.call("/v1/components/middleware.dator/logs?tail=abc")
      expect(tail.status).toBe(400)
      expect(JSON.parse(tail.body)).toEqual({ error: "bad_request", message: "tail: Unable to decode \"abc\" into a number" })
      const wait = yield* host.call("/v1/components/middleware.dator/restart?wait=1&timeout_ms=0", { method: "POST" })
      expect(JSON.parse(wait.body)).toEqual({ error: "bad_request", message: "timeout_ms: Expected a positive number, actual 0" })
      const login = yield* host.open("/v1/session", { method: "POST", body: "{\"token\": 5}", headers: { "content-type": "application/json" } })
      expect(JSON.parse(login.body)).toEqual({ error: "bad_request", message: "token: Expected string, actual 5" })

      const doc = JSON.parse((yield* host.open("/v1/openapi.json")).body)
      const declared = doc.paths["/v1/session"].post.responses["400"].content["application/json"].schema
      const ref = String(declared.$ref ?? "").replace("#/components/schemas/", "")
      const schema = doc.components.schemas[ref]
      expect(schema).toMatchObject({ type: "object", required: ["error", "message"], properties: { error: { enum: ["bad_request"] } } })
      expect(Object.keys(schema.properties).sort()).toEqual(["error", "message"])
      // Every $ref in the document still resolves.
      for (const [, name] of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
        expect({ name, defined: name !== undefined && name in doc.components.schemas }).toEqual({ name, defined: true })
      }
    }))
})

describe("control API: logout really ends a session", () => {
  it.scopedLive("closes the event stream and the log follow the session opened; a stream opened with the token runs on", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const log = Path.join(host.dataDir, "logs", "middleware.dator.log")
      Fs.mkdirSync(Path.dirname(log), { recursive: true })
      Fs.writeFileSync(log, "one\n")
      const login = yield* host.open("/v1/session", { method: "POST", body: JSON.stringify({ token: host.token }), headers: { "content-type": "application/json" } })
      const cookie = { cookie: cookieOf(login.headers.get("set-cookie")) }
      const { key } = JSON.parse(login.body) as { key: string }
      const page = { ...cookie, "x-corral-page": key }
      const logout = () =>
        new Promise((resolve) => setTimeout(resolve, 300)).then(() =>
          fetch(`http://127.0.0.1:${host.port}/v1/session`, { method: "DELETE", headers: page }))
      const started = Date.now()
      const timed = <A>(read: Promise<A>) => read.then((result) => ({ ...result, afterMs: Date.now() - started }))
      const [events, follow, byToken] = yield* Effect.promise(() =>
        Promise.all([
          // The event stream as EventSource opens it (the key in the query); the follow as fetch does (the header).
          timed(readStream(host.port, `/v1/events?page_key=${encodeURIComponent(key)}`, cookie, {
            timeoutMs: testTiming.maxStreamMs + 2_000,
            whileOpen: logout
          })),
          timed(readStream(host.port, "/v1/components/middleware.dator/logs?follow=1", page, { timeoutMs: testTiming.maxStreamMs + 2_000 })),
          readStream(host.port, "/v1/events", host.auth, { timeoutMs: 1_200 })
        ]))
      expect(events.status).toBe(200)
      expect(follow.status).toBe(200)
      expect(follow.text).toBe("one\n")
      // The server ended both, soon after the logout and well before their own time limit.
      expect({ events: events.ended, follow: follow.ended }).toEqual({ events: true, follow: true })
      expect(Math.max(events.afterMs, follow.afterMs)).toBeLessThan(testTiming.maxStreamMs - 500)
      expect(byToken).toMatchObject({ status: 200, ended: false })
    }))
})
