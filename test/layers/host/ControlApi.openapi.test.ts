/**
 * The control API's OpenAPI document, read from the running server: every path in it answers, with the
 * token, one of the statuses the document declares for it; every `/v1` route but the document itself and
 * the login answers 401 with `WWW-Authenticate: Bearer` without the token; and no route falls through to a 404.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readStream, startControlHost } from "./control/controlHost.js"

interface Operation {
  readonly responses: Readonly<Record<string, unknown>>
  readonly security?: ReadonlyArray<unknown>
}
type OpenApiDoc = { readonly openapi: string; readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>> }

/** A concrete path for a template, with parameters that exist on the test host. */
const concrete = (template: string): string =>
  template.replace("{id}", "middleware.dator").replace("{hook}", "ingress").replace("{name}", "status.css")

const envelope = JSON.stringify({ id: "e-1", subject: "alice", payload: {} })

/** A body for the routes that need one. */
const bodyFor = (method: string, template: string, token: string): string | undefined =>
  method !== "post" ? undefined : template === "/v1/session" ? JSON.stringify({ token }) : template.endsWith("/invoke") ? envelope : undefined

/** The routes anyone may call: the login and what holds no data. */
const open = new Set(["get /healthz", "get /readyz", "get /", "get /assets/{name}", "get /login", "post /v1/session", "get /v1/openapi.json"])

describe("control API: the OpenAPI document", () => {
  it.scopedLive("is served without the token, and every route in it answers as it declares", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const document = yield* host.open("/v1/openapi.json")
      expect(document.status).toBe(200)
      const doc = JSON.parse(document.body) as OpenApiDoc
      expect(doc.openapi).toMatch(/^3\./)
      const operations = Object.entries(doc.paths).flatMap(([template, item]) =>
        Object.entries(item).map(([method, operation]) => ({ template, method, operation })))
      // Every route of the contract is described, the hook invocation (served on the fast path) included.
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
        "/healthz", "/readyz", "/metrics", "/", "/assets/{name}", "/login", "/v1/session", "/v1/login-links",
        "/v1/components", "/v1/components/{id}", "/v1/components/{id}/start", "/v1/components/{id}/stop",
        "/v1/components/{id}/restart", "/v1/components/{id}/logs", "/v1/events", "/v1/events/recent", "/v1/hooks",
        "/v1/hooks/{hook}/invoke", "/v1/broker", "/v1/runtime-metrics", "/v1/reload", "/v1/config", "/v1/openapi.json"
      ]))

      for (const { method, operation, template } of operations) {
        // The login page takes a fresh one-time code.
        const link = template === "/login" ? new URL(JSON.parse((yield* host.call("/v1/login-links", { method: "POST" })).body).url) : undefined
        const path = link === undefined ? concrete(template) : `${link.pathname}${link.search}`
        const body = bodyFor(method, template, host.token)
        const headers = body === undefined ? {} : { "content-type": "application/json" }
        const answer = operation.responses["200"] !== undefined && template === "/v1/events"
          ? yield* Effect.promise(() => readStream(host.port, path, host.auth, { until: (text) => text.length > 0, timeoutMs: 5_000 }))
          : yield* host.call(path, { method: method.toUpperCase(), headers, ...(body === undefined ? {} : { body }) })
        expect({ route: `${method} ${template}`, status: answer.status, declared: Object.keys(operation.responses).includes(String(answer.status)) })
          .toEqual({ route: `${method} ${template}`, status: answer.status, declared: true })
        expect(answer.status, `${method} ${template}`).toBeLessThan(400)
        // The document's security says what the server does.
        expect({ route: `${method} ${template}`, secured: (operation.security?.length ?? 0) > 0 })
          .toEqual({ route: `${method} ${template}`, secured: !open.has(`${method} ${template}`) })
      }
    }))

  it.scopedLive("answers 401 with WWW-Authenticate: Bearer on every secured route without the token", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const doc = JSON.parse((yield* host.open("/v1/openapi.json")).body) as OpenApiDoc
      const secured = Object.entries(doc.paths).flatMap(([template, item]) =>
        Object.keys(item).filter((method) => !open.has(`${method} ${template}`)).map((method) => ({ template, method })))
      expect(secured.length).toBe(17)
      for (const { method, template } of secured) {
        const body = bodyFor(method, template, "")
        expect({ route: `${method} ${template}`, documents401: "401" in (doc.paths[template]?.[method]?.responses ?? {}) })
          .toEqual({ route: `${method} ${template}`, documents401: true })
        const answer = yield* host.open(concrete(template), {
          method: method.toUpperCase(),
          ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } })
        })
        expect({ route: `${method} ${template}`, status: answer.status }).toEqual({ route: `${method} ${template}`, status: 401 })
        expect(answer.headers.get("www-authenticate")).toBe("Bearer")
        expect(JSON.parse(answer.body)).toMatchObject({ error: "unauthorized", message: expect.stringContaining("run/control.token") })
        // A wrong token is no better than none.
        const wrong = yield* host.open(concrete(template), { method: method.toUpperCase(), headers: { authorization: "Bearer nope" } })
        expect(wrong.status).toBe(401)
      }
      // The token file is what the message points at.
      expect(host.token).toMatch(/^[0-9a-f]{64}$/)
    }))
})
