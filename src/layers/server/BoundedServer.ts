/**
 * Bounded servers: the handler interface (the fast path), a mounted `HttpApp` (optionally with one route
 * family on the direct path: plain code, one fiber only where Effect is needed), and raw connections, each as a scoped constructor and as a `Layer` of the `BoundedServer` service.
 */
import { HttpMiddleware } from "@effect/platform"
import type { HttpApp, HttpServerRequest } from "@effect/platform"
import { DefaultServices, Effect, identity, FiberId, FiberRef, FiberRefs, Layer, Option, Runtime, RuntimeFlags, RuntimeFlagsPatch } from "effect"
import type { Scope } from "effect"
import type { ConnectionHandler } from "../../services/server/BoundedConnection.js"
import type { RequestHandler } from "../../services/server/BoundedHttp.js"
import {
  BoundedServer,
  type BoundedServerConfig,
  type BoundedServerConfigError,
  type BoundedServerConfigInput,
  type BoundedServerShape,
  decodeBoundedServerConfig,
  type ServeError
} from "../../services/server/BoundedServer.js"
import { serveConnectionsWith } from "./ConnectionListener.js"
import { type DirectRoute, makeDirectListener } from "./DirectListener.js"
import { makeHandlerListener, type RouteOf } from "./HandlerListener.js"
import { makeHttpAppListener } from "./HttpAppListener.js"
import { makeHttpTransport } from "./HttpTransport.js"
import { pathOf } from "./NodeRequest.js"
import { makeServerCore, type ServerCore } from "./ServerCore.js"
import type { BoundAddress } from "../../services/server/BoundedServer.js"

/** A config as given (decoded here, errors name the field) or already decoded. */
export type ConfigSource = BoundedServerConfigInput | BoundedServerConfig

const shapeOf = (core: ServerCore, address: BoundAddress): BoundedServerShape => ({
  name: core.config.name,
  address,
  config: core.config,
  metrics: core.snapshot,
  readiness: core.readiness
})

/** The fiber refs a request fiber inherits: logging, the default services (Clock), tracing. */
const inheritedRefs: ReadonlyArray<FiberRef.FiberRef<unknown>> = [
  FiberRef.currentLoggers,
  FiberRef.currentMinimumLogLevel,
  FiberRef.currentLogAnnotations,
  FiberRef.currentTracerEnabled,
  DefaultServices.currentServices
] as ReadonlyArray<FiberRef.FiberRef<unknown>>

/**
 * The runtime request fibers run on: the caller's services and only the fiber refs above, without
 * per-fiber runtime metrics. Forking copies every fiber ref, so fewer refs make each request cheaper.
 */
const requestRuntime = <R>(): Effect.Effect<Runtime.Runtime<R>, never, R> =>
  Effect.map(Effect.runtime<R>(), (runtime) => {
    const fiberRefs = inheritedRefs.reduce(
      (refs, fiberRef) =>
        Option.match(FiberRefs.get(runtime.fiberRefs, fiberRef), {
          onNone: () => refs,
          onSome: (value) => FiberRefs.updateAs(refs, { fiberId: FiberId.none, fiberRef, value })
        }),
      FiberRefs.empty()
    )
    return Runtime.make({
      context: runtime.context,
      fiberRefs,
      runtimeFlags: RuntimeFlags.disable(runtime.runtimeFlags, RuntimeFlags.RuntimeMetrics)
    })
  })

/** Options of a served handler. */
export interface HandlerServeOptions {
  /**
   * The route of a request, as route alarms and the duration histogram key it: a template such as
   * `/v1/components/{id}`, so raw paths (ids, garbage) never become keys. Default: the path.
   */
  readonly routeOf?: RouteOf
}

/** Serves `handler` (the bounded server's own interface) until the scope closes, then drains. */
export const serveHandler = <E, R>(
  config: ConfigSource,
  handler: RequestHandler<E, R>,
  options: HandlerServeOptions = {}
): Effect.Effect<BoundedServerShape, ServeError | BoundedServerConfigError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const decoded = yield* decodeBoundedServerConfig(config)
    const core = yield* makeServerCore(decoded)
    const runtime = yield* requestRuntime<R>()
    const address = yield* makeHttpTransport(core, makeHandlerListener(core, handler, runtime, options.routeOf))
    return shapeOf(core, address)
  })

/** Options of a mounted `HttpApp`. */
export interface HttpAppServeOptions {
  /** The platform's per-request tracing span (off by default: it costs about a fifth of a hello). */
  readonly tracing?: boolean
  /** The route of a request for alarms and metrics (a template); default: the path. */
  readonly routeOf?: RouteOf
}

/** Serves an `HttpApp` (an `HttpRouter`, say) under the same contract. */
export const serveHttpApp = <E, R>(
  config: ConfigSource,
  app: HttpApp.Default<E, R>,
  options: HttpAppServeOptions = {}
): Effect.Effect<
  BoundedServerShape,
  ServeError | BoundedServerConfigError,
  Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope> | Scope.Scope
> =>
  Effect.gen(function*() {
    const decoded = yield* decodeBoundedServerConfig(config)
    const core = yield* makeServerCore(decoded)
    // The listener captures the runtime here: request fibers inherit it, without runtime metrics.
    const listener = yield* makeHttpAppListener(core, app, options.routeOf).pipe(
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.disable(RuntimeFlags.RuntimeMetrics)),
      options.tracing === true ? identity : Effect.locally(HttpMiddleware.currentTracerDisabledWhen, () => true)
    )
    const address = yield* makeHttpTransport(core, listener)
    return shapeOf(core, address)
  })

export type { DirectHead, DirectRequest, DirectRoute } from "./DirectListener.js"

/**
 * A route family served on the direct path beside a mounted `HttpApp` (the hot path the app would slow
 * down): `matches` picks its requests, `admit` and `handle` answer them in plain code or one Effect run.
 */
export type FastPath<E, R> = DirectRoute<E, R>

/**
 * Serves an `HttpApp` with one route family on the direct path, both under one core: one set of
 * permits, one deadline sweeper, one drain, one set of route metrics.
 */
export const serveHttpAppWithFastPath = <E, R, FE, FR>(
  config: ConfigSource,
  app: HttpApp.Default<E, R>,
  fast: FastPath<FE, FR>,
  options: HttpAppServeOptions = {}
): Effect.Effect<
  BoundedServerShape,
  ServeError | BoundedServerConfigError,
  Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope> | FR | Scope.Scope
> =>
  Effect.gen(function*() {
    const decoded = yield* decodeBoundedServerConfig(config)
    const core = yield* makeServerCore(decoded)
    const appListener = yield* makeHttpAppListener(core, app, options.routeOf).pipe(
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.disable(RuntimeFlags.RuntimeMetrics)),
      options.tracing === true ? identity : Effect.locally(HttpMiddleware.currentTracerDisabledWhen, () => true)
    )
    const directListener = makeDirectListener(core, fast, yield* requestRuntime<FR>(), options.routeOf)
    const address = yield* makeHttpTransport(core, (req, res) =>
      fast.matches(req.method ?? "GET", pathOf(req.url ?? "/")) ? directListener(req, res) : appListener(req, res))
    return shapeOf(core, address)
  })

/** Replies of a raw server: to a refused connection, and to one whose run passed its deadline. */
export interface ConnectionServeOptions {
  readonly overCapacityReply?: Uint8Array
  readonly timeoutReply?: Uint8Array
  /** Told of every failed accept, besides the server's own counting and logging. */
  readonly onAcceptError?: (error: Error) => Effect.Effect<void>
  /** When full, close the connection idle longest (per `BoundedConnection.setIdle`) to admit a new one. */
  readonly reclaimIdle?: boolean
}

/** Serves raw connections (TCP or a Unix socket) under the same contract. */
export const serveConnections = <E, R>(
  config: ConfigSource,
  handler: ConnectionHandler<E, R>,
  options: ConnectionServeOptions = {}
): Effect.Effect<BoundedServerShape, ServeError | BoundedServerConfigError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const decoded = yield* decodeBoundedServerConfig(config)
    const core = yield* makeServerCore({ ...decoded, maxInFlight: decoded.maxConnections })
    const address = yield* serveConnectionsWith(core, handler, {
      overCapacity: options.overCapacityReply ?? new Uint8Array(0),
      timedOut: options.timeoutReply ?? new Uint8Array(0),
      ...(options.onAcceptError === undefined ? {} : { onAcceptError: options.onAcceptError }),
      reclaimIdle: options.reclaimIdle === true
    })
    return shapeOf(core, address)
  })

/** `serveHandler` as a layer of the `BoundedServer` service. */
export const layerHandler = <E, R>(config: ConfigSource, handler: RequestHandler<E, R>, options?: HandlerServeOptions) =>
  Layer.scoped(BoundedServer, serveHandler(config, handler, options))

/** `serveHttpApp` as a layer of the `BoundedServer` service. */
export const layerHttpApp = <E, R>(config: ConfigSource, app: HttpApp.Default<E, R>, options?: HttpAppServeOptions) =>
  Layer.scoped(BoundedServer, serveHttpApp(config, app, options))

/** `serveConnections` as a layer of the `BoundedServer` service. */
export const layerConnections = <E, R>(config: ConfigSource, handler: ConnectionHandler<E, R>, options?: ConnectionServeOptions) =>
  Layer.scoped(BoundedServer, serveConnections(config, handler, options))
