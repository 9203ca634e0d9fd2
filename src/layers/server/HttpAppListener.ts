/**
 * A mounted `HttpApp` (an `HttpRouter`, an `HttpApi` app...) under the bounded contract. The
 * platform builds its request and response objects; the gate, the permit, the deadline and defect
 * capture are the bounded server's. The app runs in the platform's own request fiber (no child fiber
 * per request): that fiber is the run the sweeper interrupts, and the 504 is answered as soon as the
 * app's interruptible region has unwound (its finalizers have run).
 */
import type * as Http from "node:http"
import { performance } from "node:perf_hooks"
import type { HttpApp } from "@effect/platform"
import { HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { Cause, Context, Effect, HashSet, Option, Runtime } from "effect"
import type { Scope } from "effect"
import { answerTooLarge, closeIfBodyPending, limitRequestBody } from "./BodyLimit.js"
import { pathAsRoute, type RouteOf } from "./HandlerListener.js"
import type { RequestListener } from "./HttpTransport.js"
import { withoutDefaultRefs } from "./LeanRuntime.js"
import { pathOf } from "./NodeRequest.js"
import type { RequestRun, ServerCore } from "./ServerCore.js"

/** What the listener knows of a request before the platform hands it to the app. */
interface Admitted {
  readonly requestId: string
  readonly method: string
  readonly path: string
  readonly route: string
}

/** The answer of a run the sweeper (504) or a drain (503) interrupted, or `undefined` for any other end. */
const interruptedAnswer = (core: ServerCore, run: RequestRun): HttpServerResponse.HttpServerResponse | undefined => {
  switch (run.interruptedBy) {
    case "timeout":
      return HttpServerResponse.unsafeJson(
        { error: "handler_timeout", request_id: run.requestId, timeout_ms: core.config.handlerTimeoutMs },
        { status: 504 }
      )
    case "drain":
      return HttpServerResponse.unsafeJson(
        { error: "shutting_down" },
        { status: 503, headers: { "retry-after": String(core.config.retryAfterSeconds), connection: "close" } }
      )
    default:
      return undefined
  }
}

/**
 * Wraps `app` so each run is tracked, deadline-bound and defect-safe. It runs in the platform's
 * request fiber, inside the platform's uninterruptible region: only the app itself is interruptible,
 * so the sweeper's interrupt ends the app and the handlers below still answer. The run is removed as
 * soon as the app has produced its response: a streamed body (SSE) outlives the deadline.
 */
const boundedApp = <E, R>(
  core: ServerCore,
  app: HttpApp.Default<E, R>,
  admitted: WeakMap<Http.IncomingMessage, Admitted>,
  routeOf: RouteOf
): HttpApp.Default<unknown, R> =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    let info = admitted.get(source)
    if (info === undefined) {
      // Not admitted by this listener (the platform re-ran the app): name it now.
      const path = pathOf(request.url)
      info = { requestId: core.nextRequestId(), method: request.method, path, route: core.metrics.routeKey(routeOf(request.method, path)) }
    }
    const run: RequestRun = {
      requestId: info.requestId,
      method: info.method,
      path: info.path,
      route: info.route,
      fiber,
      stampMs: core.runs.stamp,
      interruptedBy: null,
      connection: source.socket
    }
    core.runs.add(run)
    return Effect.matchCauseEffect(Effect.interruptible(app), {
      onSuccess: (response) => {
        core.runs.delete(run)
        return Effect.as(core.alarms.recordSuccess(run.route), response)
      },
      onFailure: (cause): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown> => {
        core.runs.delete(run)
        if (run.interruptedBy === "client") return Effect.failCause(cause)
        const answer = interruptedAnswer(core, run)
        if (answer !== undefined) return Effect.succeed(answer)
        const failure = Cause.failureOption(cause)
        // The platform's own errors (route not found, bad request) keep their platform answers, and so
        // does the platform's client abort (nobody is left to answer). An app that interrupts itself
        // gave no response: a handler failure, as before.
        if (Option.isSome(failure) && HttpServerError.isServerError(failure.value)) return Effect.failCause(cause)
        if (HashSet.has(Cause.interruptors(cause), HttpServerError.clientAbortFiberId)) return Effect.failCause(cause)
        return Effect.map(core.runFailed(run, cause), (value) =>
          HttpServerResponse.unsafeJson(
            { error: value.reason === "defect" ? "handler_defect" : "handler_failure", request_id: run.requestId },
            { status: 500 }
          )
        )
      }
    })
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
    // The platform forks each request fiber from the runtime it is built in: a lean one makes each fork cheaper.
    const runtime = withoutDefaultRefs(yield* Effect.runtime<Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>>())
    const platformHandler = Runtime.runSync(runtime)(NodeHttpServer.makeHandler(boundedApp(core, app, admitted, routeOf)))
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
      const method = req.method ?? "GET"
      const path = pathOf(req.url ?? "/")
      const route = metrics.routeKey(routeOf(method, path))
      admitted.set(req, { requestId, method, path, route })
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
