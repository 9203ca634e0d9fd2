/**
 * A mounted `HttpApp` (an `HttpRouter`, an `HttpApi` app...) under the bounded contract, with a listener
 * of its own instead of the platform's `NodeHttpServer` handler. Per request: one fiber, forked with the
 * request and a lazy scope already in its context (one context update, not three); no uninterruptible
 * wrapper, no per-request tracer check or span unless tracing is on; a body in memory is written in the
 * fiber synchronously. The sweeper interrupts that fiber at the deadline, and its observer writes the
 * 504 (or drain's 503) once the app's finalizers have run. What the app observes is the platform's:
 * its `HttpServerRequest`, a request `Scope` closed after the response (unless ejected), pre-response
 * handlers, the platform's answers to its errors (404, 400...), a client abort as an interruption.
 */
import type * as Http from "node:http"
import { performance } from "node:perf_hooks"
import { HttpApp, HttpMiddleware, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Context, Effect, type Exit, type Fiber, FiberRef, HashSet, Option, Runtime, Scope } from "effect"
import { answerTooLarge, closeIfBodyPending, limitRequestBody } from "./BodyLimit.js"
import { pathAsRoute, type RouteOf } from "./HandlerListener.js"
import type { RequestListener } from "./HttpTransport.js"
import { withoutDefaultRefs } from "./LeanRuntime.js"
import { pathOf } from "./NodeRequest.js"
import { NodeServerRequest } from "./NodeServerRequest.js"
import { RequestScope } from "./RequestScope.js"
import { withRequestSpan } from "./RequestSpan.js"
import { writeResponse } from "./ResponseWriter.js"
import type { RequestRun, ServerCore } from "./ServerCore.js"

/** One admitted request: its Node objects, what the app sees, and its run once the fiber starts. */
interface Exchange {
  readonly res: Http.ServerResponse
  readonly request: NodeServerRequest
  readonly scope: RequestScope
  readonly requestId: string
  readonly method: string
  readonly path: string
  readonly route: string
  run: RequestRun | undefined
}

// Headers set one by one and the body given to `end`, so node:http writes Content-Length itself.
const answerJson = (res: Http.ServerResponse, status: number, body: string, extra?: Readonly<Record<string, string>>): void => {
  if (res.headersSent || res.writableEnded || res.destroyed) return
  res.statusCode = status
  res.setHeader("content-type", "application/json")
  if (extra !== undefined) for (const name in extra) res.setHeader(name, extra[name] ?? "")
  res.end(body)
}

/** Builds the `request` listener that serves `app` under the core's contract. */
export const makeHttpAppListener = <E, R>(
  core: ServerCore,
  app: HttpApp.Default<E, R>,
  routeOf: RouteOf = pathAsRoute
): Effect.Effect<RequestListener, never, Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>> =>
  Effect.gen(function*() {
    const { config, metrics, requestPermits, runs, alarms } = core
    // Each request fiber starts from this runtime's refs: a lean one makes each fork cheaper.
    const base = withoutDefaultRefs(yield* Effect.runtime<Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>>())
    const baseServices = base.context.unsafeMap
    const runOnBase = Runtime.runFork(base)
    // Decided per request before the app runs, as the platform's tracer middleware does.
    const tracerDisabled = yield* FiberRef.get(HttpMiddleware.currentTracerDisabledWhen)
    const retryAfter = String(config.retryAfterSeconds)
    const retryAfterHeader = { "retry-after": retryAfter }
    const shuttingDown = JSON.stringify({ error: "shutting_down" })

    const send = (x: Exchange, response: HttpServerResponse.HttpServerResponse): Effect.Effect<void> => {
      if (core.draining) x.res.shouldKeepAlive = false
      const streaming = writeResponse(x.res, x.request, response)
      // A body that fails midway has already ended the response; nobody is left to tell.
      return streaming === undefined ? Effect.void : Effect.ignore(streaming)
    }

    // The platform's answer to a cause (404 for an unknown route, 400 for a bad body...), without handlers.
    const platformAnswer = (x: Exchange, cause: Cause.Cause<unknown>): Effect.Effect<void> =>
      Effect.flatMap(HttpServerError.causeResponse(cause), ([response]) => send(x, response))

    // Pre-response handlers (`HttpApp.appendPreResponseHandler`: cookies, CORS...) see every answer, as in the platform.
    const respond = (fiber: Fiber.RuntimeFiber<unknown, unknown>, x: Exchange, response: HttpServerResponse.HttpServerResponse): Effect.Effect<void> => {
      const handlers = fiber.getFiberRef(HttpApp.currentPreResponseHandlers)
      if (handlers._tag === "None") return send(x, response)
      return Effect.matchCauseEffect(handlers.value(x.request, response), {
        onSuccess: (handled) => send(x, handled),
        onFailure: (cause) => platformAnswer(x, cause)
      })
    }

    const failed = (fiber: Fiber.RuntimeFiber<unknown, unknown>, x: Exchange, run: RequestRun, cause: Cause.Cause<unknown>): Effect.Effect<void> => {
      const failure = Cause.failureOption(cause)
      // The platform's own errors (route not found, bad request) keep their platform answers, and so does
      // a client abort (nobody is left to answer). An app that interrupts itself gave no response: a failure.
      if (Option.isSome(failure) && HttpServerError.isServerError(failure.value)) {
        return Effect.flatMap(HttpServerError.causeResponse(cause), ([response]) => respond(fiber, x, response))
      }
      if (HashSet.has(Cause.interruptors(cause), HttpServerError.clientAbortFiberId)) return Effect.void
      return Effect.map(core.runFailed(run, cause), (value) => {
        if (core.draining) x.res.shouldKeepAlive = false
        answerJson(x.res, 500, JSON.stringify({ error: value.reason === "defect" ? "handler_defect" : "handler_failure", request_id: run.requestId }))
      })
    }

    const serve = (x: Exchange): Effect.Effect<void, never, R | HttpServerRequest.HttpServerRequest> =>
      Effect.withFiberRuntime<void, never, R | HttpServerRequest.HttpServerRequest>((fiber) => {
        const run: RequestRun = {
          requestId: x.requestId,
          method: x.method,
          path: x.path,
          route: x.route,
          fiber,
          stampMs: runs.stamp,
          interruptedBy: null,
          connection: x.request.source.socket
        }
        x.run = run
        runs.add(run)
        const answered = tracerDisabled(x.request) ? app : withRequestSpan(app, x.request)
        // The run ends when the app has answered: a streamed body (SSE) outlives the deadline.
        return Effect.matchCauseEffect(answered, {
          onSuccess: (response) => {
            runs.delete(run)
            return Effect.zipRight(alarms.recordSuccess(run.route), respond(fiber, x, response))
          },
          onFailure: (cause) => {
            runs.delete(run)
            return failed(fiber, x, run, cause)
          }
        })
      })

    // The fiber is over: a run the server interrupted gets its answer now, after the app's finalizers.
    const ended = (x: Exchange, exit: Exit.Exit<void>): void => {
      const run = x.run
      if (run !== undefined) runs.delete(run)
      if (exit._tag === "Failure") {
        if (core.draining) x.res.shouldKeepAlive = false
        switch (run?.interruptedBy) {
          case "timeout":
            answerJson(x.res, 504, JSON.stringify({ error: "handler_timeout", request_id: x.requestId, timeout_ms: config.handlerTimeoutMs }))
            break
          case "drain":
            x.res.shouldKeepAlive = false
            answerJson(x.res, 503, shuttingDown, retryAfterHeader)
            break
          case "client":
            break
          default:
            answerJson(x.res, 500, JSON.stringify({ error: "handler_interrupted", request_id: x.requestId }))
        }
      }
      const closing = x.scope.closeAfterRequest(exit)
      if (closing !== undefined) runOnBase(closing)
    }

    const refuse = (res: Http.ServerResponse, status: number, body: string) => {
      res.shouldKeepAlive = false
      answerJson(res, status, body, retryAfterHeader)
    }

    return (req, res) => {
      if (core.draining) return refuse(res, 503, shuttingDown)
      if (!requestPermits.tryAcquire()) {
        metrics.rejectedRequest()
        closeIfBodyPending(req, res)
        return answerJson(res, 503, `{"error":"over_capacity"}`, retryAfterHeader)
      }
      const requestId = core.nextRequestId()
      const declaredLength = req.headers["content-length"]
      if (declaredLength !== undefined && Number(declaredLength) > config.maxBodyBytes) {
        requestPermits.release()
        metrics.clientError()
        return refuse(res, 413, JSON.stringify({ error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: requestId }))
      }
      const method = req.method ?? "GET"
      const path = pathOf(req.url ?? "/")
      const route = metrics.routeKey(routeOf(method, path))
      const request = new NodeServerRequest(req, res)
      const scope = new RequestScope()
      const x: Exchange = { res, request, scope, requestId, method, path, route, run: undefined }
      metrics.requestStarted()
      const startedAt = performance.now()
      // Before the app runs: one that answers synchronously must already see the pending body.
      limitRequestBody(req, res, config.maxBodyBytes, () => {
        metrics.clientError()
        answerTooLarge(res, JSON.stringify({ error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: requestId }))
        // The answer is written: the app's own response would come too late, so it ends as if its client left.
        runs.interruptWhere("client", (run) => run.connection === req.socket)
      })
      // The request and its scope go into the fiber's context at the fork: one map copy, no provideService.
      const context = Context.unsafeMake<R | HttpServerRequest.HttpServerRequest>(
        new Map(baseServices).set(HttpServerRequest.HttpServerRequest.key, request).set(Scope.Scope.key, scope)
      )
      const fiber = Runtime.runFork(Runtime.make({ context, fiberRefs: base.fiberRefs, runtimeFlags: base.runtimeFlags }))(serve(x))
      fiber.addObserver((exit) => ended(x, exit))
      res.once("close", () => {
        requestPermits.release()
        metrics.requestFinished(route, (performance.now() - startedAt) / 1000)
        if (res.writableEnded) return
        // The client left before the answer was complete: the app (or its streamed body) is interrupted.
        if (x.run !== undefined && x.run.interruptedBy === null) x.run.interruptedBy = "client"
        fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
      })
    }
  })
