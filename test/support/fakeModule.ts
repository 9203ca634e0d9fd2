/**
 * A tiny module server on 127.0.0.1 for client and executor tests: one handler per request, and
 * counters of what the server saw (connections accepted and closed, requests, request bodies).
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect"

/** Answers one request; `body` is the request body as text. */
export type ModuleHandler = (request: Http.IncomingMessage, response: Http.ServerResponse, body: string) => void

/** A running fake module. */
export interface FakeModule {
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Connections closed so far (by either side). */
  readonly closed: () => number
  /** Requests received so far, with their path and body. */
  readonly requests: Array<{ readonly method: string; readonly path: string; readonly body: string }>
  /** Waits (live clock) until `closed()` reaches `count`; false after `timeoutMs`. */
  readonly waitClosed: (count: number, timeoutMs?: number) => Effect.Effect<boolean>
}

/** Starts a fake module for the life of the scope; its end closes every connection. */
export const startFakeModule = (handler: ModuleHandler): Effect.Effect<FakeModule, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; module: FakeModule }>((resume) => {
      let connections = 0
      let closed = 0
      const sockets = new Set<Net.Socket>()
      const requests: Array<{ method: string; path: string; body: string }> = []
      const server = Http.createServer((request, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          requests.push({ method: request.method ?? "", path: request.url ?? "", body })
          handler(request, response, body)
        })
      })
      server.keepAliveTimeout = 30_000
      server.on("connection", (socket: Net.Socket) => {
        connections += 1
        sockets.add(socket)
        socket.on("error", () => undefined)
        socket.once("close", () => {
          closed += 1
          sockets.delete(socket)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const waitClosed = (count: number, timeoutMs = 2_000): Effect.Effect<boolean> =>
          Effect.promise(() =>
            new Promise<boolean>((resolve) => {
              const started = Date.now()
              const poll = (): void => {
                if (closed >= count) resolve(true)
                else if (Date.now() - started > timeoutMs) resolve(false)
                else setTimeout(poll, 5)
              }
              poll()
            })
          )
        resume(Effect.succeed({
          server,
          module: {
            port,
            endpoint: `http://127.0.0.1:${port}`,
            connections: () => connections,
            closed: () => closed,
            requests,
            waitClosed
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ module }) => module))

/** Writes `value` as a JSON answer with Content-Length. */
export const answerJson = (response: Http.ServerResponse, value: unknown, status = 200): void => {
  const body = JSON.stringify(value)
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  response.end(body)
}

/** Writes `text` with `contentType`. */
export const answerText = (response: Http.ServerResponse, text: string, status = 200, contentType = "text/plain"): void => {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) })
  response.end(text)
}

/** Streams `chunkBytes`-byte chunks every few milliseconds without Content-Length until the client goes away. */
export const streamForever = (response: Http.ServerResponse, chunkBytes = 8_192): void => {
  response.writeHead(200, { "content-type": "application/json" })
  const chunk = Buffer.alloc(chunkBytes, 0x20)
  response.write("[")
  const timer = setInterval(() => {
    if (response.destroyed) clearInterval(timer)
    else response.write(chunk)
  }, 2)
  response.on("close", () => clearInterval(timer))
}

/** A port nothing listens on (bound, then released). */
export const refusedPort = (): Effect.Effect<number> =>
  Effect.async<number>((resume) => {
    const server = Http.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })
