/**
 * A stand-in for the host's control API, as the issue 9 HTTP contract describes it, serving the real
 * `assets/status/` files: it lets the page be tested with data a real host would not produce (markup in
 * errors and names) and records every request the page makes. `restart` walks a component through
 * stopping, starting and ready over `/v1/events`; `start` and `stop` answer 409. Loopback only; closed
 * with the scope.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"

const assetsDir = Path.resolve(import.meta.dirname, "../../assets/status")
const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8"
}

/** One request the page made. */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
}

/** What the stub serves: component views, recent events (`{id, event}`), the broker snapshot and the log text. */
export interface StubData {
  readonly components: ReadonlyArray<Record<string, unknown>>
  readonly events: ReadonlyArray<{ readonly id: number; readonly event: Record<string, unknown> }>
  readonly broker: Record<string, unknown>
  readonly log: string
}

/** A running stub. */
export interface StatusPageStub {
  readonly url: string
  readonly token: string
  readonly requests: ReadonlyArray<RecordedRequest>
}

const sessionCookie = "corral_session=stub-session"
/** The stub session's page key, which the page must send back as X-Corral-Page (or ?page_key= on the event stream). */
export const stubPageKey = "stub-page-key"
const pageKey = stubPageKey

const json = (response: Http.ServerResponse, status: number, body: unknown, headers: Http.OutgoingHttpHeaders = {}): void => {
  response.writeHead(status, { "content-type": "application/json", ...headers })
  response.end(JSON.stringify(body))
}

const serveAsset = (response: Http.ServerResponse, name: string): void => {
  const type = contentTypes[Path.extname(name)]
  if (!/^[a-z.-]+$/.test(name) || type === undefined || !Fs.existsSync(Path.join(assetsDir, name))) {
    json(response, 404, { error: "not_found", message: name })
    return
  }
  // The host's own policy for the page's files: the page must work without inline script or style.
  response.writeHead(200, { "content-type": type, "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" })
  response.end(Fs.readFileSync(Path.join(assetsDir, name)))
}

/** Starts the stub on 127.0.0.1 with an OS-chosen port. */
export const startStatusPageStub = (data: StubData): Effect.Effect<StatusPageStub, Error, Scope.Scope> => {
  const token = "stub-token"
  const requests: Array<RecordedRequest> = []
  const components = new Map(data.components.map((view) => [String(view["id"]), { ...view }]))
  const streams = new Set<Http.ServerResponse>()
  let nextEventId = Math.max(0, ...data.events.map((e) => e.id)) + 1
  const timers = new Set<NodeJS.Timeout>()
  const moveTo = (id: string, phase: string, pid: number | null, afterMs: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      const view = components.get(id)
      if (view === undefined) return
      const event = { _tag: "lifecycle", at: new Date().toISOString(), component: id, from: view["phase"], to: phase, reason: "stub", pid }
      components.set(id, { ...view, phase, pid })
      const frame = `id: ${nextEventId++}\nevent: lifecycle\ndata: ${JSON.stringify(event)}\n\n`
      for (const stream of streams) stream.write(frame)
    }, afterMs)
    timers.add(timer)
  }
  const handle = (request: Http.IncomingMessage, response: Http.ServerResponse, body: string): void => {
    const url = new URL(request.url ?? "/", "http://stub")
    const method = request.method ?? "GET"
    requests.push({ method, path: url.pathname + url.search, headers: request.headers })
    if (method === "GET" && url.pathname === "/") return serveAsset(response, "index.html")
    if (method === "GET" && url.pathname.startsWith("/assets/")) return serveAsset(response, url.pathname.slice("/assets/".length))
    if (url.pathname === "/v1/session" && method === "POST") {
      if (body !== JSON.stringify({ token })) return json(response, 401, { error: "unauthorized", message: "wrong token" }, { "www-authenticate": "Bearer" })
      return json(response, 200, { key: pageKey }, { "set-cookie": `${sessionCookie}; HttpOnly; SameSite=Strict; Path=/` })
    }
    // As the host: the cookie lets a request in only with the session's page key.
    const givenKey = request.headers["x-corral-page"] ?? (url.pathname === "/v1/events" ? url.searchParams.get("page_key") : null)
    const bySession = (request.headers.cookie ?? "").split(/;\s*/).includes(sessionCookie) && givenKey === pageKey
    if (!bySession && request.headers.authorization !== `Bearer ${token}`) {
      return json(response, 401, { error: "unauthorized", message: "log in" }, { "www-authenticate": "Bearer" })
    }
    if (url.pathname === "/v1/session" && method === "DELETE") {
      response.writeHead(204, { "set-cookie": "corral_session=; Max-Age=0; Path=/" })
      return void response.end()
    }
    if (url.pathname === "/v1/components") return json(response, 200, { components: [...components.values()] })
    const component = /^\/v1\/components\/([^/]+)(?:\/([a-z]+))?$/.exec(url.pathname)
    if (component !== null) {
      const id = decodeURIComponent(component[1] ?? "")
      const view = components.get(id)
      if (view === undefined) return json(response, 404, { error: "not_found", message: "no such component" })
      if (component[2] === undefined) return json(response, 200, view)
      if (component[2] === "logs") {
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" })
        return void response.end(data.log)
      }
      if (component[2] === "restart" && method === "POST") {
        moveTo(id, "stopping", null, 50)
        moveTo(id, "starting", 4242, 150)
        moveTo(id, "ready", 4242, 300)
        return json(response, 202, { target: "ready", component: view })
      }
      return json(response, 409, { error: "impossible_transition", message: `cannot ${component[2]} <b>now</b>` })
    }
    if (url.pathname === "/v1/events/recent") return json(response, 200, { events: data.events })
    if (url.pathname === "/v1/events") {
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
      response.write(": stub\n\n")
      streams.add(response)
      return void response.on("close", () => streams.delete(response))
    }
    if (url.pathname === "/v1/broker") return json(response, 200, data.broker)
    if (url.pathname === "/v1/runtime-metrics") return json(response, 404, { error: "not_found", message: "not in the stub" })
    json(response, 404, { error: "not_found", message: `no route ${method} ${url.pathname}` })
  }
  return Effect.acquireRelease(
    Effect.async<{ server: Http.Server; url: string }, Error>((resume) => {
      const server = Http.createServer((request, response) => {
        let body = ""
        request.setEncoding("utf8")
        request.on("data", (chunk: string) => {
          body += chunk
        })
        request.on("end", () => handle(request, response, body))
      })
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        if (address === null || typeof address === "string") return resume(Effect.fail(new Error("the stub is not on TCP")))
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${address.port}` }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => {
      for (const timer of timers) clearTimeout(timer)
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  ).pipe(Effect.map(({ url }) => ({ url, token, requests })))
}
