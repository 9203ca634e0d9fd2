/**
 * HTTP over the connection gate: a `node:http` parser fed only with admitted sockets, its header,
 * request and keep-alive timeouts set on purpose (Node's defaults reap a stalled request after
 * ~90 s), and the drain that answers every accepted request before the sockets close.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { Clock, Effect, Runtime } from "effect"
import type { Scope } from "effect"
import type { BoundAddress, ServeError } from "../../services/server/BoundedServer.js"
import { announcesBody } from "./BodyLimit.js"
import { closeLingering, lingerIfBodyPending } from "./LingeringClose.js"
import { makeConnectionGate, overCapacityHttpResponse } from "./ConnectionGate.js"
import { runDrain, type ServerCore } from "./ServerCore.js"

/** Handles one admitted request: answers it now, or starts a run that will. */
export type RequestListener = (request: Http.IncomingMessage, response: Http.ServerResponse) => void

const statusText: Readonly<Record<number, string>> = {
  400: "Bad Request",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable"
}

/** A complete response for a connection the parser gave up on; the connection closes after it. */
export const fixedHttpResponse = (status: number, error: string): Buffer => {
  const body = `{"error":"${error}"}`
  return Buffer.from(
    `HTTP/1.1 ${status} ${statusText[status] ?? "Error"}\r\nConnection: close\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    "latin1"
  )
}

const clientErrorStatus = (code: string | undefined): readonly [number, string] => {
  switch (code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [408, "request_timeout"]
    case "HPE_HEADER_OVERFLOW":
      return [431, "headers_too_large"]
    default:
      return [400, "bad_request"]
  }
}

/** Serves HTTP through `listener` under the core's contract; closing the scope drains. */
export const makeHttpTransport = (
  core: ServerCore,
  listener: RequestListener
): Effect.Effect<BoundAddress, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const { config } = core
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const http = Http.createServer({
      requestTimeout: config.headersTimeoutMs + config.handlerTimeoutMs,
      headersTimeout: config.headersTimeoutMs,
      keepAliveTimeout: config.idleTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(config.headersTimeoutMs / 10))),
      noDelay: true
    })
    http.timeout = 0
    // Requests only arrive through the gate (declared below), so it exists by the time this runs. It
    // learns which connections are busy, to close only idle ones when capacity is short.
    http.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      gate.requestStarted(req.socket)
      if (announcesBody(req)) lingerIfBodyPending(req)
      res.once("close", () => gate.requestFinished(req.socket))
      listener(req, res)
    })
    http.on("clientError", (error: NodeJS.ErrnoException, socket: Net.Socket) => {
      if (error.code === "ECONNRESET" || !socket.writable) {
        socket.destroy()
        return
      }
      const [status, name] = clientErrorStatus(error.code)
      core.metrics.clientError()
      // The rest of a bad request is not worth reading: closed once the client had time to read the answer.
      closeLingering(socket, fixedHttpResponse(status, name))
    })
    // node:http arms its per-connection header and request timeout checker on 'listening'; this
    // parser never listens itself (the gate does), so start the checker as listen would.
    http.emit("listening")

    const { gate, address } = yield* makeConnectionGate({
      config,
      metrics: core.metrics,
      rejectBytes: overCapacityHttpResponse(config.retryAfterSeconds),
      reclaimIdle: true,
      onAccepted: (socket) => {
        socket.once("close", () => core.runs.interruptWhere("client", (run) => run.connection === socket))
        http.emit("connection", socket)
      },
      onAcceptError: (error) => {
        runFork(core.acceptFailed(error))
      }
    })

    yield* Effect.addFinalizer(() =>
      runDrain(Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        core.draining = true
        gate.stopAccepting()
        http.closeIdleConnections()
        yield* core.drainRuns
        // Responses written while draining close their connections; idle ones close now.
        http.closeIdleConnections()
        yield* gate.awaitAllClosed(1_000)
        http.closeAllConnections()
        gate.destroyAll()
        http.close()
        const end = yield* Clock.currentTimeMillis
        yield* core.drained(end - start)
      }))
    )
    return address
  })
