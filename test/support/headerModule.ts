/**
 * A module stand-in that records the headers of every request and answers a fixed JSON body, on a
 * loopback port or on a Unix socket: for tests of what the host sends (its token, the deadline).
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"

/** One request as the stand-in saw it. */
export interface SeenRequest {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  /** When it arrived (epoch ms). */
  readonly at: number
}

/** A running stand-in. */
export interface HeaderModule {
  /** `http://127.0.0.1:PORT` or `unix:/…/module.sock`. */
  readonly endpoint: string
  readonly requests: ReadonlyArray<SeenRequest>
}

/** Serves `answer` as JSON on `127.0.0.1:0` (`"tcp"`) or a socket in a fresh 0700 directory (`"unix"`). */
export const startHeaderModule = (
  transport: "tcp" | "unix",
  answer: string = JSON.stringify({ decision: "allow" })
): Effect.Effect<HeaderModule, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; dir: string | undefined; module: HeaderModule }>((resume) => {
      const requests: Array<SeenRequest> = []
      const server = Http.createServer((request, response) => {
        requests.push({ method: request.method ?? "", path: request.url ?? "", headers: request.headers, at: Date.now() })
        request.resume()
        request.on("end", () => {
          response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) })
          response.end(answer)
        })
      })
      const dir = transport === "unix" ? Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-sock-")) : undefined
      const ready = (endpoint: string) => resume(Effect.succeed({ server, dir, module: { endpoint, requests } }))
      if (dir !== undefined) {
        const socketPath = Path.join(dir, "module.sock")
        server.listen(socketPath, () => ready(`unix:${socketPath}`))
      } else {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          ready(`http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`)
        })
      }
    }),
    ({ dir, server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => {
          if (dir !== undefined) Fs.rmSync(dir, { recursive: true, force: true })
          resume(Effect.void)
        })
      })
  ).pipe(Effect.map(({ module }) => module))
