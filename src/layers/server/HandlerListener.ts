/**
 * The fast path: each admitted request runs the handler as one fiber on a prebuilt runtime. The
 * permit is taken synchronously (no permit: 503 before any fiber), released by the fiber's
 * observer however it ends; the sweeper enforces the deadline; defects become 500 values.
 */
import type * as Http from "node:http"
import { performance } from "node:perf_hooks"
import { Cause, Effect, type Exit, Option, Runtime } from "effect"
import type { BoundedResponse, RequestHandler } from "../../services/server/BoundedHttp.js"
import { RequestBodyError } from "../../services/server/BoundedHttp.js"
import { answerTooLarge, closeIfBodyPending, limitRequestBody } from "./BodyLimit.js"
import type { RequestListener } from "./HttpTransport.js"
import { NodeBoundedRequest } from "./NodeRequest.js"
import type { RequestRun, ServerCore } from "./ServerCore.js"

const jsonContent = "application/json"

// Headers are set one by one and the body given to `end`, so node:http writes Content-Length itself.
const writeJson = (res: Http.ServerResponse, status: number, body: string, extra?: Readonly<Record<string, string>>): void => {
  if (res.headersSent || res.destroyed) return
  res.statusCode = status
  res.setHeader("content-type", jsonContent)
  if (extra !== undefined) for (const name in extra) res.setHeader(name, extra[name] ?? "")
  res.end(body)
}

const writeResponse = (res: Http.ServerResponse, response: BoundedResponse): void => {
  if (res.headersSent || res.destroyed) return
  res.statusCode = response.status
  const headers = response.headers
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name] ?? "")
  res.end(response.body)
}

/** The answer for a failed body read: the client's fault, not the handler's. */
const bodyErrorResponse = (error: RequestBodyError, requestId: string): BoundedResponse => {
  const status = error.reason === "TooLarge" ? 413 : 400
  return {
    status,
    headers: { "content-type": jsonContent, connection: "close" },
    body: JSON.stringify({ error: error.reason === "TooLarge" ? "body_too_large" : "bad_body", message: error.message, request_id: requestId })
  }
}

/** Names the route of a request (its template, e.g. `/v1/components/{id}`) for alarms and metrics. */
export type RouteOf = (method: string, path: string) => string

/** The default route of a request: its path (route labels are bounded by `ServerMetrics.routeKey`). */
export const pathAsRoute: RouteOf = (_method, path) => path

/** Builds the `request` listener that runs `handler` under the core's contract. */
export const makeHandlerListener = <E, R>(
  core: ServerCore,
  handler: RequestHandler<E, R>,
  runtime: Runtime.Runtime<R>,
  routeOf: RouteOf = pathAsRoute
): RequestListener => {
  const runFork = Runtime.runFork(runtime)
  const { config, metrics, requestPermits, runs, alarms } = core
  const overloaded = JSON.stringify({ error: "over_capacity" })
  const retryAfter = { "retry-after": String(config.retryAfterSeconds) }
  const shuttingDown = JSON.stringify({ error: "shutting_down" })

  const guarded = (request: NodeBoundedRequest, route: string): Effect.Effect<BoundedResponse, never, R> =>
    Effect.suspend(() => handler(request)).pipe(
      Effect.tap(alarms.recordSuccess(route)),
      Effect.catchAllCause((cause) => {
        const failure = Cause.failureOption(cause)
        const bodyError = Option.isSome(failure) ? findBodyError(failure.value) : undefined
        if (bodyError !== undefined) {
          metrics.clientError()
          return Effect.succeed(bodyErrorResponse(bodyError, request.id))
        }
        const run = { requestId: request.id, method: request.method, path: request.path, route }
        return Effect.map(core.runFailed(run, cause), (value) => ({
          status: 500,
          headers: { "content-type": jsonContent },
          body: JSON.stringify({ error: value.reason === "defect" ? "handler_defect" : "handler_failure", request_id: request.id })
        }))
      })
    )

  const finish = (run: RequestRun, res: Http.ServerResponse, startedAt: number, exit: Exit.Exit<BoundedResponse>) => {
    runs.delete(run)
    requestPermits.release()
    metrics.requestFinished(run.route, (performance.now() - startedAt) / 1000)
    if (core.draining) res.shouldKeepAlive = false
    if (exit._tag === "Success") return writeResponse(res, exit.value)
    switch (run.interruptedBy) {
      case "timeout":
        return writeJson(res, 504, JSON.stringify({ error: "handler_timeout", request_id: run.requestId, timeout_ms: config.handlerTimeoutMs }))
      case "drain":
        res.shouldKeepAlive = false
        return writeJson(res, 503, shuttingDown, retryAfter)
      case "client":
        return
      default:
        // Interrupted by itself: no response of its own, so it is a handler failure.
        return writeJson(res, 500, JSON.stringify({ error: "handler_interrupted", request_id: run.requestId }))
    }
  }

  return (req, res) => {
    if (core.draining) {
      res.shouldKeepAlive = false
      return writeJson(res, 503, shuttingDown, retryAfter)
    }
    if (!requestPermits.tryAcquire()) {
      metrics.rejectedRequest()
      closeIfBodyPending(req, res)
      return writeJson(res, 503, overloaded, retryAfter)
    }
    const requestId = core.nextRequestId()
    const declaredLength = req.headers["content-length"]
    if (declaredLength !== undefined && Number(declaredLength) > config.maxBodyBytes) {
      requestPermits.release()
      metrics.clientError()
      res.shouldKeepAlive = false
      return writeJson(res, 413, JSON.stringify({ error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: requestId }))
    }
    // Before the fork: a handler that answers synchronously must already see the pending body.
    limitRequestBody(req, res, config.maxBodyBytes, () => {
      metrics.clientError()
      answerTooLarge(res, JSON.stringify({ error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: requestId }))
      // The answer is written: the run's own response would come too late, so it ends as if its client left.
      runs.interruptWhere("client", (other) => other.connection === req.socket)
    })
    const request = new NodeBoundedRequest(requestId, req, config.maxBodyBytes)
    const route = metrics.routeKey(routeOf(request.method, request.path))
    metrics.requestStarted()
    const startedAt = performance.now()
    const fiber = runFork(guarded(request, route))
    const run: RequestRun = {
      fiber,
      stampMs: runs.stamp,
      interruptedBy: null,
      requestId,
      method: request.method,
      path: request.path,
      route,
      connection: req.socket
    }
    runs.add(run)
    fiber.addObserver((exit) => finish(run, res, startedAt, exit))
  }
}

const findBodyError = (error: unknown): RequestBodyError | undefined =>
  error instanceof RequestBodyError ? error : undefined
