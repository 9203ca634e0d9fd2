/**
 * The direct path: one route family served in plain code on the `request` listener. The permit, the body
 * (read into a Buffer with stream events, under the body limit), the deadline and the answer are plain
 * code; Effect runs only where the route asks for it, in one fiber. The contract is the handler path's:
 * 503 over capacity or while draining, 413 past the body limit, 504 at the deadline (the sweeper cancels a
 * run still reading its body, or interrupts its fiber), drain answers every accepted request, a failure or
 * a defect is a logged, counted 500, and a client that leaves ends its run.
 */
import type * as Http from "node:http"
import { performance } from "node:perf_hooks"
import { Cause, Effect, type Exit, Option, Runtime } from "effect"
import type { Fiber } from "effect"
import type { BoundedResponse, RequestHeaders } from "../../services/server/BoundedHttp.js"
import { answerTooLarge, closeIfBodyPending, limitRequestBody } from "./BodyLimit.js"
import { pathAsRoute, type RouteOf } from "./HandlerListener.js"
import type { RequestListener } from "./HttpTransport.js"
import { pathOf } from "./NodeRequest.js"
import type { RequestRun, ServerCore } from "./ServerCore.js"

/** A request of the direct path before its body is read. */
export interface DirectHead {
  /** Unique per server run; echoed in error bodies. */
  readonly id: string
  readonly method: string
  /** The raw request target, query included. */
  readonly url: string
  /** The path without the query string. */
  readonly path: string
  readonly headers: RequestHeaders
  /** Runs `release` once when the request's run ends, however it ends (answered, timed out, drained, client gone). */
  readonly onEnd: (release: () => void) => void
}

/** A request of the direct path with its whole body (at most the server's `maxBodyBytes`). */
export interface DirectRequest extends DirectHead {
  readonly body: Uint8Array
}

/** A route family on the direct path: each step answers now (plain code) or by an Effect run in one fiber. */
export interface DirectRoute<E, R> {
  /** Whether a request is this route's (by method and path, query stripped). */
  readonly matches: (method: string, path: string) => boolean
  /** Before the body is read: a response refuses the request now (auth, say); `undefined` goes on to read it. */
  readonly admit: (head: DirectHead) => BoundedResponse | undefined | Effect.Effect<BoundedResponse | undefined, E, R>
  /** With the whole body: the answer. */
  readonly handle: (request: DirectRequest) => BoundedResponse | Effect.Effect<BoundedResponse, E, R>
  /** Headers every answer the server itself writes on this route carries (its 413, 503, 504, 500). */
  readonly headers?: Readonly<Record<string, string>>
}

const jsonContent = "application/json"
const emptyBody = new Uint8Array(0)

/** One request on the direct path, as the server tracks it. Touched by event-loop callbacks only. */
class DirectRun implements RequestRun, DirectRequest {
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined = undefined
  interruptedBy: RequestRun["interruptedBy"] = null
  body: Uint8Array = emptyBody
  /** Set once the run has ended: nothing more is written or released. */
  ended = false
  /** Removes the body listeners while the body is being read. */
  stopReading: (() => void) | undefined = undefined
  releases: Array<() => void> | undefined = undefined
  readonly connection: object

  constructor(
    readonly id: string,
    readonly req: Http.IncomingMessage,
    readonly res: Http.ServerResponse,
    readonly path: string,
    readonly route: string,
    readonly stampMs: number,
    readonly startedAt: number,
    readonly cancel: () => void
  ) {
    this.connection = req.socket
  }

  get requestId(): string {
    return this.id
  }
  get method(): string {
    return this.req.method ?? "GET"
  }
  get url(): string {
    return this.req.url ?? "/"
  }
  get headers(): RequestHeaders {
    return this.req.headers
  }
  onEnd(release: () => void): void {
    if (this.ended) return release()
    ;(this.releases ??= []).push(release)
  }
}

const isResponse = <A, E, R>(answer: A | Effect.Effect<A, E, R>): answer is A => !Effect.isEffect(answer)

/** Builds the `request` listener of `route` under the core's contract. */
export const makeDirectListener = <E, R>(
  core: ServerCore,
  route: DirectRoute<E, R>,
  runtime: Runtime.Runtime<R>,
  routeOf: RouteOf = pathAsRoute
): RequestListener => {
  const runFork = Runtime.runFork(runtime)
  const { config, metrics, requestPermits, runs, alarms } = core
  const extra = route.headers ?? {}
  const retryAfter = { ...extra, "retry-after": String(config.retryAfterSeconds) }
  const overloaded = JSON.stringify({ error: "over_capacity" })
  const shuttingDown = JSON.stringify({ error: "shutting_down" })
  const tooLarge = (id: string) => JSON.stringify({ error: "body_too_large", max_body_bytes: config.maxBodyBytes, request_id: id })

  const write = (res: Http.ServerResponse, status: number, headers: Readonly<Record<string, string>> | undefined, body: string | Uint8Array | undefined): void => {
    if (res.headersSent || res.destroyed) return
    res.statusCode = status
    // Headers set one by one and the body given to `end`: node:http then writes Content-Length itself
    // (`writeHead` would fix the headers first and send the body chunked).
    if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name] ?? "")
    res.end(body)
  }
  const writeJson = (res: Http.ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>> = extra): void =>
    write(res, status, { ...headers, "content-type": jsonContent }, body)

  /** Ends `run`: every count and release once, then the answer (none when the client left). */
  const end = (run: DirectRun, response: BoundedResponse | undefined): void => {
    if (run.ended) return
    run.ended = true
    run.stopReading?.()
    runs.delete(run)
    requestPermits.release()
    metrics.requestFinished(run.route, (performance.now() - run.startedAt) / 1000)
    if (run.releases !== undefined) for (const release of run.releases) release()
    if (core.draining) run.res.shouldKeepAlive = false
    if (response !== undefined) write(run.res, response.status, response.headers, response.body)
  }

  /** The answer to a run the server ended (deadline, drain, client gone); none for the client. */
  const endInterrupted = (run: DirectRun): void => {
    switch (run.interruptedBy) {
      case "timeout":
        end(run, undefined)
        return writeJson(run.res, 504, JSON.stringify({ error: "handler_timeout", request_id: run.id, timeout_ms: config.handlerTimeoutMs }))
      case "drain":
        end(run, undefined)
        run.res.shouldKeepAlive = false
        return writeJson(run.res, 503, shuttingDown, retryAfter)
      default:
        return end(run, undefined)
    }
  }

  /** A failure or defect of the route: logged and counted by the core, a 500 with the request id. */
  const endFailed = (run: DirectRun, cause: Cause.Cause<unknown>): void => {
    const reason = Option.isSome(Cause.failureOption(cause)) ? "handler_failure" : "handler_defect"
    runFork(core.runFailed({ requestId: run.id, method: run.method, path: run.path, route: run.route }, cause))
    end(run, undefined)
    writeJson(run.res, 500, JSON.stringify({ error: reason, request_id: run.id }))
  }

  const succeeded = (run: DirectRun, response: BoundedResponse): void => {
    // Outside a fiber: a success is recorded only where it can clear an alarm.
    if (alarms.successMatters(run.route)) runFork(alarms.recordSuccess(run.route))
    end(run, response)
  }

  /** Runs one step of the route: its answer now, or its Effect in one fiber whose end `next` takes. */
  const step = <A>(run: DirectRun, answer: () => A | Effect.Effect<A, E, R>, next: (run: DirectRun, value: A) => void): void => {
    let given: A | Effect.Effect<A, E, R>
    try {
      given = answer()
    } catch (error) {
      return endFailed(run, Cause.die(error))
    }
    if (isResponse(given)) return next(run, given)
    const fiber = runFork(given)
    run.fiber = fiber
    fiber.addObserver((exit: Exit.Exit<A, E>) => {
      run.fiber = undefined
      if (run.ended) return
      if (exit._tag === "Success") return next(run, exit.value)
      if (run.interruptedBy !== null) return endInterrupted(run)
      // Interrupted by itself: no answer of its own, so it is a handler failure.
      if (Cause.isInterruptedOnly(exit.cause)) {
        end(run, undefined)
        return writeJson(run.res, 500, JSON.stringify({ error: "handler_interrupted", request_id: run.id }))
      }
      endFailed(run, exit.cause)
    })
  }

  const admitted = (run: DirectRun, refusal: BoundedResponse | undefined): void => {
    if (refusal !== undefined) return succeeded(run, refusal)
    readBody(run)
  }

  /** Reads the body with stream events; the body limit (`limitRequestBody`) stops a body past it before here. */
  const readBody = (run: DirectRun): void => {
    const req = run.req
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      chunks.push(chunk)
    }
    const onEnd = () => {
      stop()
      run.body = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size)
      step(run, () => route.handle(run), succeeded)
    }
    const onAborted = () => {
      stop()
      metrics.clientError()
      end(run, undefined)
      run.res.shouldKeepAlive = false
      writeJson(run.res, 400, JSON.stringify({ error: "bad_body", message: "client aborted the request body", request_id: run.id }))
    }
    const stop = () => {
      run.stopReading = undefined
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onAborted)
      req.off("aborted", onAborted)
    }
    run.stopReading = stop
    req.on("data", onData)
    req.on("end", onEnd)
    req.on("error", onAborted)
    req.on("aborted", onAborted)
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
      return writeJson(res, 413, tooLarge(requestId))
    }
    const path = pathOf(req.url ?? "/")
    const routeKey = metrics.routeKey(routeOf(req.method ?? "GET", path))
    metrics.requestStarted()
    const run: DirectRun = new DirectRun(requestId, req, res, path, routeKey, runs.stamp, performance.now(), () => endInterrupted(run))
    runs.add(run)
    limitRequestBody(req, res, config.maxBodyBytes, () => {
      metrics.clientError()
      for (const name in extra) res.setHeader(name, extra[name] ?? "")
      answerTooLarge(res, tooLarge(requestId))
      // The answer is written: the run's own would come too late, so it ends as if its client left.
      runs.interruptWhere("client", (other) => other.connection === req.socket)
    })
    step(run, () => route.admit(run), admitted)
  }
}
