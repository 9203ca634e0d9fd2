/**
 * The broker: length-prefixed JSON frames on `run/broker.sock` (0600, in the 0700 run dir), served
 * by the bounded server's raw connection interface. Each frame must arrive whole within the read
 * deadline; a bad frame gets `bad_frame` and a closed connection; hellos are rate-limited per
 * connection and refused `overloaded` while the broker is short of descriptors (its usage sampled from
 * /proc every `fdSampleIntervalMs`, and per accept only when near the limit or demoted).
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Clock, Deferred, Duration, Effect, Either, Layer, Option, Ref, Schedule, Schema } from "effect"
import type { Scope } from "effect"
import { readFdCounts } from "../system/FdUsage.js"
import { privateDirectory } from "../system/PrivateDirectory.js"
import { type FdPressureState, defaultFdPressurePolicy, initialFdPressureState, step as fdStep } from "../../services/policies/FdPressure.js"
import { defaultRateLimitPolicy, initialRateLimitState, take as takeToken } from "../../services/policies/RateLimit.js"
import type { BoundedConnection } from "../../services/server/BoundedConnection.js"
import { type BoundedServerConfigError, ServeError } from "../../services/server/BoundedServer.js"
import { type AdminSnapshot, Broker, type BrokerShape } from "../../services/broker/Broker.js"
import { BackendRegistry } from "../../services/broker/BackendRegistry.js"
import {
  type AdminRequest,
  BrokerErrorCode,
  BrokerReply,
  type ErrorReply,
  type HelloRequest
} from "../../services/broker/BrokerProtocol.js"
import type { ProcessLauncher } from "../../services/host/ProcessLauncher.js"
import type { LoopbackPorts } from "../../services/system/LoopbackPorts.js"
import { BackendRegistryLive } from "./registry/BackendRegistry.js"
import { brokerEventPublisher } from "./BrokerEvents.js"
import { countHello, countReject, registerBrokerMetrics } from "./BrokerMetrics.js"
import { serveConnections } from "../server/BoundedServer.js"
import { decodeRequest, encodeFrame, FrameDecoder } from "./BrokerFraming.js"
import { ServiceDefinitionsLive } from "./ServiceDefinitions.js"
import { errorCode } from "../../services/system/ErrorDetails.js"

/** Where the broker lives and how patient it is. */
export interface BrokerOptions {
  readonly dataDir: string
  /** Time to receive one complete frame (a silent or trickling peer is closed after it). */
  readonly readDeadlineMs?: number
  readonly maxConnections?: number
  /** Called on `admin shutdown` (the host stops itself). */
  readonly onShutdown?: Effect.Effect<void>
}

const codes: ReadonlyArray<BrokerErrorCode> = BrokerErrorCode.literals

/** How often the broker reads its descriptor usage from /proc while no accept needs a reading. */
export const fdSampleIntervalMs = 250

interface Counters {
  readonly hellos: number
  readonly rejects: Readonly<Record<BrokerErrorCode, number>>
}

const encodeReply = (reply: BrokerReply): Uint8Array => {
  const encoded = encodeFrame(Schema.encodeSync(BrokerReply)(reply))
  if (Either.isRight(encoded)) return encoded.right
  // Only an echoed, enormous request_id can make a reply too large: answer without it.
  const fallback = encodeFrame({ type: "error", code: "bad_frame", message: "reply too large (request_id too long?)" })
  return Either.getOrElse(fallback, () => new Uint8Array(0))
}

/** Serves the broker in the current scope on the registry in context; closing the scope drains it. */
const serveBroker = (
  options: BrokerOptions
): Effect.Effect<BrokerShape, ServeError | BoundedServerConfigError, BackendRegistry | Scope.Scope> =>
  Effect.gen(function*() {
    const runDir = Path.join(options.dataDir, "run")
    const socketPath = Path.join(runDir, "broker.sock")
    yield* Effect.mapError(
      privateDirectory(runDir),
      (error) => new ServeError({ server: "broker", address: socketPath, message: error.message })
    )
    const registry = yield* BackendRegistry
    const instance = `broker-${randomBytes(4).toString("hex")}`
    const startedAt = yield* Clock.currentTimeMillis
    const readDeadlineMs = options.readDeadlineMs ?? 10_000
    const counters = yield* Ref.make<Counters>({
      hellos: 0,
      rejects: Object.fromEntries(codes.map((code) => [code, 0])) as Record<BrokerErrorCode, number>
    })
    const fdGuard = yield* Ref.make<FdPressureState>(initialFdPressureState)
    const rateLimits = yield* Ref.make(initialRateLimitState)
    const accepting = yield* Ref.make(true)
    // Completed when the broker starts draining: a connection idle between frames ends at once.
    const draining = yield* Deferred.make<void>()
    const openConnections = yield* Ref.make(0)
    const publishEvent = yield* brokerEventPublisher
    yield* registerBrokerMetrics

    // Accepts that cannot reach the low watermark since the last reading (each adds one descriptor at
    // most): only past them, or while demoted, does an accept read /proc itself.
    const acceptsUntilCheck = yield* Ref.make(0)
    const observeFds = (event: "Accepted" | "Sampled") =>
      Effect.flatMap(readFdCounts, (usage) =>
        usage === "unknown"
          ? Effect.void
          : Effect.zipRight(
            Ref.set(
              acceptsUntilCheck,
              usage === "exhausted"
                ? 0
                : Math.max(0, Math.floor(defaultFdPressurePolicy.lowWatermark * usage.softLimit) - usage.openFds)
            ),
            Ref.update(fdGuard, (state) =>
              fdStep(
                defaultFdPressurePolicy,
                state,
                usage === "exhausted" ? { _tag: "AcceptFailed", code: "EMFILE" } : { _tag: event, ...usage }
              ).state)
          ))
    /**
     * Per accept, /proc/self/fd is read (O(open fds)) only while demoted or once enough accepts since the
     * last reading could have reached the low watermark; before that an accept changes nothing, and the
     * sampler below (and accept failures) catch other rises.
     */
    const observeAccept = Effect.flatMap(
      Effect.zip(Ref.get(fdGuard), Ref.getAndUpdate(acceptsUntilCheck, (left) => Math.max(0, left - 1))),
      ([guard, left]) => (guard.demoted || left === 0 ? observeFds("Accepted") : Effect.void)
    )

    const reject = (code: BrokerErrorCode, message: string, requestId: string | undefined, retryAfterMs?: number): Effect.Effect<ErrorReply> =>
      Effect.as(
        Effect.zipRight(Ref.update(counters, (c) => ({ ...c, rejects: { ...c.rejects, [code]: c.rejects[code] + 1 } })), countReject(code)),
        {
          type: "error",
          code,
          message,
          ...(requestId === undefined ? {} : { request_id: requestId }),
          ...(retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs })
        } as const
      )

    /** Counts a hello's outcome and publishes a refusal (but not `rate_limited`: a flood would push everything else out of the event ring). */
    const observeHello = (request: HelloRequest) => (reply: BrokerReply): Effect.Effect<void> =>
      reply.type === "error"
        ? Effect.zipRight(
          countHello("rejected"),
          reply.code === "rate_limited"
            ? Effect.void
            : publishEvent({
              action: "rejected",
              service: request.service,
              version: request.version ?? null,
              pid: null,
              detail: `${reply.code}: ${reply.message}`
            })
        )
        : countHello("ok")

    const hello = (request: HelloRequest, peer: string): Effect.Effect<BrokerReply> =>
      Effect.tap(helloReply(request, peer), observeHello(request))

    const helloReply = (request: HelloRequest, peer: string): Effect.Effect<BrokerReply> =>
      Effect.gen(function*() {
        yield* Ref.update(counters, (c) => ({ ...c, hellos: c.hellos + 1 }))
        const guard = yield* Ref.get(fdGuard)
        if (guard.demoted) {
          return yield* reject("overloaded", `broker is short of file descriptors (${guard.lastReason ?? "demoted"})`, request.request_id, defaultFdPressurePolicy.retryAfterMs)
        }
        const now = yield* Clock.currentTimeMillis
        const decision = yield* Ref.modify(rateLimits, (state) => {
          const { decision, state: next } = takeToken(defaultRateLimitPolicy, state, peer, now)
          return [decision, next] as const
        })
        if (!decision.allowed) {
          return yield* reject("rate_limited", `too many hellos from this connection`, request.request_id, decision.retryAfterMs)
        }
        const acquired = yield* Effect.either(registry.acquire(request.service, request.version))
        if (Either.isLeft(acquired)) {
          const error = acquired.left
          return yield* reject(error.code, error.message, request.request_id, error.retryAfterMs)
        }
        const backend = acquired.right
        return {
          type: "hello.ok",
          ...(request.request_id === undefined ? {} : { request_id: request.request_id }),
          service: request.service,
          version: backend.version,
          endpoint: backend.endpoint,
          instance: backend.instance,
          launched: backend.launched
        } as const
      })

    const snapshot: Effect.Effect<AdminSnapshot> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const c = yield* Ref.get(counters)
      const guard = yield* Ref.get(fdGuard)
      const registryCounters = yield* registry.counters
      return {
        instance,
        pid: process.pid,
        socket: socketPath,
        uptime_sec: Math.round((now - startedAt) / 100) / 10,
        accepting: yield* Ref.get(accepting),
        connections_open: yield* Ref.get(openConnections),
        demoted: guard.demoted,
        backends: yield* registry.snapshot,
        spawn_budgets: yield* registry.spawnBudgets,
        counters: {
          hellos: c.hellos,
          launches: registryCounters.launches,
          coalesced_waits: registryCounters.coalescedWaits,
          launch_failures: registryCounters.launchFailures,
          demotions: guard.demotions,
          recoveries: guard.recoveries,
          rejects: c.rejects
        }
      }
    })

    const admin = (request: AdminRequest): Effect.Effect<BrokerReply> =>
      Effect.gen(function*() {
        const body: unknown = yield* (() => {
          switch (request.verb) {
            case "status":
            case "metrics":
              return snapshot
            case "healthz":
              return Effect.succeed({ status: "ok" })
            case "readyz":
              return Effect.map(Effect.all([Ref.get(accepting), Ref.get(fdGuard)]), ([open, guard]) => ({ ready: open && !guard.demoted }))
            case "shutdown":
              return Effect.as(Effect.forkDaemon(options.onShutdown ?? Effect.void), { accepted: true })
          }
        })()
        return { type: `admin.${request.verb}`, ...(request.request_id === undefined ? {} : { request_id: request.request_id }), body } as const
      })

    /** Reads the next whole frame within the read deadline; `None` once the peer has finished. */
    const serve = (connection: BoundedConnection): Effect.Effect<void> =>
      Effect.gen(function*() {
        yield* Ref.update(openConnections, (n) => n + 1)
        yield* observeAccept
        const decoder = new FrameDecoder()
        while (true) {
          const deadline = (yield* Clock.currentTimeMillis) + readDeadlineMs
          let results: ReadonlyArray<Either.Either<unknown, { readonly message: string }>> = []
          while (results.length === 0) {
            const remaining = deadline - (yield* Clock.currentTimeMillis)
            const read = connection.read.pipe(
              Effect.timeout(Duration.millis(Math.max(1, remaining))),
              Effect.option,
              Effect.map(Option.flatten),
              Effect.orElseSucceed(() => Option.none<Uint8Array>())
            )
            const chunk = yield* (decoder.pending() === 0
              ? Effect.raceFirst(read, Effect.as(Deferred.await(draining), Option.none<Uint8Array>()))
              : read)
            if (Option.isNone(chunk)) return
            results = decoder.push(chunk.value)
          }
          for (const result of results) {
            if (Either.isLeft(result)) {
              const error = yield* reject("bad_frame", result.left.message, undefined)
              yield* connection.write(encodeReply(error)).pipe(Effect.ignore)
              return
            }
            const request = decodeRequest(result.right)
            if (Either.isLeft(request)) {
              const { code, message, request_id } = request.left
              const error = yield* reject(code, message, request_id)
              yield* connection.write(encodeReply(error)).pipe(Effect.ignore)
              if (code === "bad_frame") return
              continue
            }
            const reply = request.right.type === "hello" ? yield* hello(request.right, connection.id) : yield* admin(request.right)
            yield* connection.write(encodeReply(reply)).pipe(Effect.ignore)
          }
        }
      }).pipe(Effect.ensuring(Ref.update(openConnections, (n) => n - 1)))

    yield* serveConnections(
      { name: "broker", path: socketPath, maxConnections: options.maxConnections ?? 256, handlerTimeoutMs: 3_600_000 },
      serve,
      {
        overCapacityReply: encodeReply({ type: "error", code: "overloaded", message: "broker at its connection limit", retry_after_ms: 100 }),
        onAcceptError: (error) =>
          Ref.update(fdGuard, (state) =>
            fdStep(defaultFdPressurePolicy, state, { _tag: "AcceptFailed", code: errorCode(error) ?? "UNKNOWN" }).state)
      }
    )
    Fs.chmodSync(socketPath, 0o600)
    yield* observeFds("Sampled")
    yield* Effect.forkScoped(Effect.interruptible(Effect.repeat(observeFds("Sampled"), Schedule.spaced(fdSampleIntervalMs))))
    yield* Effect.addFinalizer(() => Effect.zipRight(Ref.set(accepting, false), Deferred.succeed(draining, undefined)))
    return { socketPath, snapshot }
  })

/** The broker on `<dataDir>/run/broker.sock`, answering hellos from the backend registry it is given. */
export const BrokerLive = (
  options: BrokerOptions
): Layer.Layer<Broker, ServeError | BoundedServerConfigError, BackendRegistry> => Layer.scoped(Broker, serveBroker(options))

/** The backend registry of a data dir: definitions from `services/`, sockets in `run/backends/`, output in `logs/`. */
export const BrokerBackendsLive = (
  dataDir: string
): Layer.Layer<BackendRegistry, never, ProcessLauncher | LoopbackPorts> =>
  BackendRegistryLive({ runDir: Path.join(dataDir, "run"), logsDir: Path.join(dataDir, "logs") }).pipe(
    Layer.provide(ServiceDefinitionsLive(Path.join(dataDir, "services")))
  )

/**
 * Starts the broker of a data dir, with its own definitions and registry, in the current scope;
 * closing the scope drains it, then stops its backends.
 */
export const makeBroker = (
  options: BrokerOptions
): Effect.Effect<BrokerShape, ServeError | BoundedServerConfigError, ProcessLauncher | LoopbackPorts | Scope.Scope> =>
  Effect.flatMap(Layer.build(BrokerBackendsLive(options.dataDir)), (backends) => Effect.provide(serveBroker(options), backends))
