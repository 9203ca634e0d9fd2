/**
 * A mounted `HttpApp` (an `HttpRouter`, an `HttpApi` app...) under the bounded contract. The
 * platform builds its request and response objects; the gate, the permit, the deadline (the app
 * runs as a child fiber the sweeper can interrupt) and defect capture are the bounded server's.
 */
import type * as Http from "node:http"
import { performance } from "node:perf_hooks"
import type { HttpApp } from "@effect/platform"
import { HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { Cause, Effect, Exit, Fiber, Option } from "effect"
import type { Scope } from "effect"
import { answerTooLarge, closeIfBodyPending, limitRequestBody } from "./BodyLimit.js"
import { pathAsRoute, type RouteOf } from "./HandlerListener.js"
import type { RequestListener } from "./HttpTransport.js"
import { pathOf } from "./NodeRequest.js"
import type { RequestRun, ServerCore } from "./ServerCore.js"

/** What the listener knows of a request before the platform hands it to the app. */
interface Admitted {
  readonly requestId: string
  readonly route: string
}

/** Wraps `app` so each run is tracked, deadline-bound and defect-safe. */
const boundedApp = <E, R>(
  core: ServerCore,
  app: HttpApp.Default<E, R>,
  admitted: WeakMap<Http.IncomingMessage, Admitted>
): HttpApp.Default<unknown, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const known = admitted.get(source)
    const requestId = known?.requestId ?? core.nextRequestId()
    const route = known?.route ?? core.metrics.routeKey(pathOf(request.url))
    const info = { requestId, method: request.method, path: pathOf(request.url), route }
    return Effect.fork(Effect.interruptible(app)).pipe(
      Effect.flatMap((fiber) => {
        const run: RequestRun = { ...info, fiber, stampMs: core.runs.stamp, interruptedBy: null, connection: source.socket }
        core.runs.add(run)
        return Fiber.await(fiber).pipe(
          Effect.ensuring(Effect.sync(() => core.runs.delete(run))),
          Effect.flatMap((exit): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown> => {
            if (Exit.isSuccess(exit)) {
              return Effect.as(core.alarms.recordSuccess(route), exit.value)
            }
            switch (run.interruptedBy) {
              case "timeout":
                return Effect.succeed(
                  HttpServerResponse.unsafeJson(
                    { error: "handler_timeout", request_id: requestId, timeout_ms: core.config.handlerTimeoutMs },
                    { status: 504 }
                  )
                )
              case "drain":
                return Effect.succeed(
                  HttpServerResponse.unsafeJson(
                    { error: "shutting_down" },
                    { status: 503, headers: { "retry-after": String(core.config.retryAfterSeconds), connection: "close" } }
                  )
                )
              case "client":
                return Effect.interrupt
            }
            const failure = Cause.failureOption(exit.cause)
            // The platform's own errors (route not found, bad request) keep their platform answers.
            if (Option.isSome(failure) && HttpServerError.isServerError(failure.value)) return Effect.failCause(exit.cause)
            return Effect.map(core.runFailed(info, exit.cause), (value) =>
              HttpServerResponse.unsafeJson(
                { error: value.reason === "defect" ? "handler_defect" : "handler_failure", request_id: requestId },
                { status: 500 }
              )
            )
          })
        )
      })
    )
  })

/** Builds the `request` listener that serves `app` under the core's contract. */
export const makeHttpAppListener = <E, R>(
  core: ServerCore,
  app: HttpApp.Default<E, R>,
  routeOf: RouteOf = pathAsRoute
): Effect.Effect<RequestListener, never, Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>> =>
  Effect.gen(function*() {
    const { config, metrics, requestPermits } = core
    const admitted = new WeakMap<Http.IncomingMessage, Admitted>()
    const platformHandler = yield* NodeHttpServer.makeHandler(boundedApp(core, app, admitted))
    const retryAfter = String(config.retryAfterSeconds)
    const refuse = (res: Http.ServerResponse, status: number, body: object) => {
      res.shouldKeepAlive = false
      res.statusCode = status
      res.setHeader("content-type", "application/json")
      res.setHeader("retry-after", retryAfter)
      res.end(JSON.stringify(body))
    }
    return (req, res) => {
      if (core.draining) return refuse(res, 503, { error: "shutting_down" })
      if (!requestPermits.tryAcquire()) {
        metrics.rejectedRequest()
        closeIfBodyPending(req, res)
        res.statusCode = 503
        res.setHeader("content-type", "application/json")
        res.setHeader("retry-after", retryAfter)
        return res.end(`{"error":"over_capacity"}`)
      }
      const requestId = core.nextRequestId()
      const declaredLength = req.headers["content-length"]
      if (declaredLength !== undefined && Number(declaredLength) > config.maxBodyBytes) {
        requestPermits.release()
        metrics.clientError()
        return refuse(res, 413, { error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: requestId })
      }
      const route = metrics.routeKey(routeOf(req.method ?? "GET", pathOf(req.url ?? "/")))
      admitted.set(req, { requestId, route })
      metrics.requestStarted()
      const startedAt = performance.now()
      res.once("close", () => {
        requestPermits.release()
        metrics.requestFinished(route, (performance.now() - startedAt) / 1000)
      })
      // Before the app runs: one that answers synchronously must already see the pending body.
      limitRequestBody(req, res, config.maxBodyBytes, () => {
        metrics.clientError()
        answerTooLarge(res, JSON.stringify({ error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: requestId }))
        // The answer is written: the app's own response would come too late, so it ends as if its client left.
        core.runs.interruptWhere("client", (run) => run.connection === req.socket)
      })
      platformHandler(req, res)
    }
  })
