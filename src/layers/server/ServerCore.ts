/**
 * What the three server interfaces share: config, metrics, request permits, in-flight runs and
 * their deadline sweeper, route alarms, last errors, and how a failed run is logged and counted.
 */
import { randomBytes } from "node:crypto"
import { Cause, Clock, Effect, Fiber, Option, Ref } from "effect"
import type { Scope } from "effect"
import type { BoundedServerConfig, Readiness, ServerMetricsSnapshot } from "../../services/server/BoundedServer.js"
import { HandlerFailure } from "../../services/server/BoundedServer.js"
import { unlessUrgent } from "../../services/system/ShutdownUrgency.js"
import { makeRouteAlarms, type ServerRouteAlarms } from "./RouteAlarms.js"
import { InFlightRuns, type Run, startSweeper, sweepTickMs } from "./InFlightRuns.js"
import { PermitGate } from "./PermitGate.js"
import { ServerMetrics } from "./ServerMetrics.js"

/** A handler run as the server tracks it. */
export interface RequestRun extends Run {
  readonly requestId: string
  readonly method: string
  readonly path: string
  readonly route: string
  /** The connection it came in on: closing it interrupts the run. */
  readonly connection: object
}

type LastError = ServerMetricsSnapshot["last_handler_error"]

const firstLine = (text: string): string => {
  const end = text.indexOf("\n")
  return (end === -1 ? text : text.slice(0, end)).slice(0, 500)
}

/** Shared state of one server. Mutable fields are touched by event-loop callbacks only. */
export class ServerCore {
  readonly metrics: ServerMetrics
  readonly requestPermits: PermitGate
  readonly runs: InFlightRuns<RequestRun>
  private readonly idPrefix = randomBytes(4).toString("hex")
  private idCounter = 0
  /** Set by drain: new requests are refused and responses close their connection. */
  draining = false

  constructor(
    readonly config: BoundedServerConfig,
    readonly alarms: ServerRouteAlarms,
    private readonly lastHandlerError: Ref.Ref<LastError>,
    private readonly lastAcceptError: Ref.Ref<LastError>,
    private readonly drainMs: Ref.Ref<number | null>
  ) {
    this.metrics = new ServerMetrics(config.name)
    this.requestPermits = new PermitGate(config.maxInFlight)
    this.runs = new InFlightRuns(config.handlerTimeoutMs, sweepTickMs(config.handlerTimeoutMs), (run) =>
      this.runTimedOut(run)
    )
  }

  nextRequestId(): string {
    return `${this.idPrefix}-${(this.idCounter++).toString(36)}`
  }

  /** Logs, counts and alarms a run that ended in a defect or an unhandled failure. */
  runFailed(run: Omit<RequestRun, "fiber" | "stampMs" | "interruptedBy" | "connection">, cause: Cause.Cause<unknown>) {
    return Effect.gen(this, function*() {
      const reason = Option.isSome(Cause.failureOption(cause)) ? "failure" : "defect"
      const message = firstLine(Cause.pretty(cause))
      const failure = new HandlerFailure({
        server: this.config.name,
        requestId: run.requestId,
        method: run.method,
        path: run.path,
        route: run.route,
        reason,
        message
      })
      const now = yield* Clock.currentTimeMillis
      this.metrics.handlerError(now)
      yield* Ref.set(this.lastHandlerError, { at: new Date(now).toISOString(), message: `${run.method} ${run.path}: ${message}` })
      yield* Effect.logError(`handler ${reason} on ${run.method} ${run.path}`, cause).pipe(
        Effect.annotateLogs(this.runAnnotations(run))
      )
      yield* this.alarms.recordFailure(run.route, "defect", message)
      return failure
    })
  }

  /** What every log line about one handler run names. */
  private runAnnotations(run: Pick<RequestRun, "requestId" | "method" | "path" | "route">): Record<string, string> {
    return { server: this.config.name, request_id: run.requestId, method: run.method, path: run.path, route: run.route }
  }

  private runTimedOut(run: RequestRun): Effect.Effect<void> {
    const message = `no response within ${this.config.handlerTimeoutMs} ms`
    return Effect.suspend(() => {
      this.metrics.handlerTimeout()
      return Effect.logWarning(`handler timeout on ${run.method} ${run.path}: ${message}`).pipe(
        Effect.annotateLogs(this.runAnnotations(run)),
        Effect.zipRight(this.alarms.recordFailure(run.route, "timeout", message))
      )
    })
  }

  /** Records an accept error; logs it at most once per `acceptErrorBackoffMs`. */
  acceptFailed(error: Error): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      const now = yield* Clock.currentTimeMillis
      this.metrics.acceptError(now)
      const previous = yield* Ref.getAndSet(this.lastAcceptError, { at: new Date(now).toISOString(), message: error.message })
      if (previous === null || now - Date.parse(previous.at) >= this.config.acceptErrorBackoffMs) {
        yield* Effect.logError(`accept failed: ${error.message}`).pipe(Effect.annotateLogs({ server: this.config.name }))
      }
    })
  }

  /** Drain's middle: in-flight runs get `shutdownGraceMs` to finish (none once a stop is urgent), then the rest are interrupted. */
  readonly drainRuns: Effect.Effect<void> = Effect.suspend(() =>
    this.runs.awaitIdle.pipe(
      Effect.timeout(this.config.shutdownGraceMs),
      unlessUrgent,
      Effect.ignore,
      Effect.zipRight(this.runs.interruptAll("drain", 1_000))
    )
  )

  /** Records how long the drain took. */
  drained(millis: number): Effect.Effect<void> {
    this.metrics.drained(millis)
    return Ref.set(this.drainMs, millis)
  }

  readonly snapshot: Effect.Effect<ServerMetricsSnapshot> = Effect.suspend(() =>
    Effect.all([Ref.get(this.lastAcceptError), Ref.get(this.lastHandlerError), Ref.get(this.drainMs)]).pipe(
      Effect.map(([lastAccept, lastHandler, drainMs]) =>
        this.metrics.snapshot({ last_accept_error: lastAccept, last_handler_error: lastHandler, shutdown_drain_ms: drainMs })
      )
    )
  )

  readonly readiness: Effect.Effect<Readiness> = Effect.suspend(() =>
    Effect.map(this.alarms.alarmed, (alarmed) => ({
      ready: !this.draining && alarmed.length === 0,
      draining: this.draining,
      alarmed_routes: alarmed
    }))
  )
}

/**
 * Runs a drain from a finalizer. Finalizers are uninterruptible, and when the closing fiber was
 * itself interrupted (SIGTERM) every interruptible wait inside one ends at once; the drain runs in
 * its own interruptible fiber so its bounded waits mean what they say, and the finalizer joins it.
 */
export const runDrain = (drain: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.forkDaemon(Effect.interruptible(drain)).pipe(Effect.flatMap(Fiber.join))

/** Builds the core of a server and starts its deadline sweeper in the scope. */
export const makeServerCore = (config: BoundedServerConfig): Effect.Effect<ServerCore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const alarms = yield* makeRouteAlarms({ serverName: config.name })
    const core = new ServerCore(
      config,
      alarms,
      yield* Ref.make<LastError>(null),
      yield* Ref.make<LastError>(null),
      yield* Ref.make<number | null>(null)
    )
    yield* startSweeper(core.runs)
    return core
  })
