/**
 * The broker: length-prefixed JSON frames on `run/broker.sock` (0600, in the 0700 run dir), served
 * by the bounded server's raw connection interface. Each frame must arrive whole within the read
 * deadline; a bad frame gets `bad_frame` and a closed connection; hellos are rate-limited per
 * connection and refused `overloaded` while the broker is short of descriptors (its usage sampled from
 * /proc every `fdSampleIntervalMs`, and per accept only when near the limit or demoted). With every
 * connection slot held, a new connection closes the one idle longest (between frames) rather than
 * being refused; it is refused `overloaded` only when every slot is mid-frame or mid-reply.
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Clock, Effect, Either, Layer, Option, Ref } from "effect"
import type { Scope } from "effect"
import { privateDirectory } from "../system/PrivateDirectory.js"
import { defaultFdPressurePolicy } from "../../services/policies/FdPressure.js"
import {
  defaultRateLimitPolicy,
  initialRateLimitState,
  type RateDecision,
  type RateLimitState,
  take as takeToken
} from "../../services/policies/RateLimit.js"
import type { BoundedConnection } from "../../services/server/BoundedConnection.js"
import { type BoundedServerConfigError, ServeError } from "../../services/server/BoundedServer.js"
import { type AdminSnapshot, Broker, type BrokerShape } from "../../services/broker/Broker.js"
import { BackendRegistry } from "../../services/broker/BackendRegistry.js"
import {
  type AdminRequest,
  BrokerErrorCode,
  type BrokerReply,
  type ErrorReply,
  type HelloRequest
} from "../../services/broker/BrokerProtocol.js"
import type { ProcessLauncher } from "../../services/host/ProcessLauncher.js"
import type { LoopbackPorts } from "../../services/system/LoopbackPorts.js"
import { BackendRegistryLive } from "./registry/BackendRegistry.js"
import { brokerEventPublisher } from "./BrokerEvents.js"
import { countHello, countReject, registerBrokerMetrics } from "./BrokerMetrics.js"
import { serveConnections } from "../server/BoundedServer.js"
import { decodeRequest, type FrameResult } from "./BrokerFraming.js"
import { makeFrameReads } from "./FrameReads.js"
import { encodeReply } from "./ReplyEncoding.js"
import { ServiceDefinitionsLive } from "./ServiceDefinitions.js"
import { makeBrokerFdGuard } from "./BrokerFdGuard.js"

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

export { fdSampleIntervalMs } from "./BrokerFdGuard.js"

/** A reply, and whether the connection closes after it (a bad frame). */
type Answer = readonly [BrokerReply, boolean]

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
    // Plain counters: only this broker's fibers touch them, each update synchronous (no Ref allocation per hello).
    const counters = { hellos: 0, rejects: Object.fromEntries(codes.map((code) => [code, 0])) as Record<BrokerErrorCode, number> }
    const fdGuard = makeBrokerFdGuard()
    const accepting = yield* Ref.make(true)
    const reads = yield* makeFrameReads(readDeadlineMs)
    let openConnections = 0
    const publishEvent = yield* brokerEventPublisher
    yield* registerBrokerMetrics

    const reject = (code: BrokerErrorCode, message: string, requestId: string | undefined, retryAfterMs?: number): Effect.Effect<ErrorReply> =>
      Effect.as(
        Effect.zipRight(Effect.sync(() => counters.rejects[code]++), countReject(code)),
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

    const hello = (request: HelloRequest, rateLimit: (now: number) => RateDecision): Effect.Effect<BrokerReply> =>
      Effect.tap(helloReply(request, rateLimit), observeHello(request))

    // No generator on the way of a hello: each step is one flatMap or match.
    const helloReply = (request: HelloRequest, rateLimit: (now: number) => RateDecision): Effect.Effect<BrokerReply> =>
      Effect.clockWith((clock) => {
        counters.hellos++
        const guard = fdGuard.current()
        if (guard.demoted) {
          return reject("overloaded", `broker is short of file descriptors (${guard.lastReason ?? "demoted"})`, request.request_id, defaultFdPressurePolicy.retryAfterMs)
        }
        const decision = rateLimit(clock.unsafeCurrentTimeMillis())
        if (!decision.allowed) {
          return reject("rate_limited", `too many hellos from this connection`, request.request_id, decision.retryAfterMs)
        }
        return Effect.matchEffect(registry.acquire(request.service, request.version), {
          onFailure: (error) => reject(error.code, error.message, request.request_id, error.retryAfterMs),
          onSuccess: (backend): Effect.Effect<BrokerReply> =>
            Effect.succeed({
              type: "hello.ok",
              ...(request.request_id === undefined ? {} : { request_id: request.request_id }),
              service: request.service,
              version: backend.version,
              endpoint: backend.endpoint,
              instance: backend.instance,
              launched: backend.launched
            })
        })
      })

    const snapshot: Effect.Effect<AdminSnapshot> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const guard = fdGuard.current()
      const registryCounters = yield* registry.counters
      return {
        instance,
        pid: process.pid,
        socket: socketPath,
        uptime_sec: Math.round((now - startedAt) / 100) / 10,
        accepting: yield* Ref.get(accepting),
        connections_open: openConnections,
        demoted: guard.demoted,
        backends: yield* registry.snapshot,
        spawn_budgets: yield* registry.spawnBudgets,
        counters: {
          hellos: counters.hellos,
          launches: registryCounters.launches,
          coalesced_waits: registryCounters.coalescedWaits,
          launch_failures: registryCounters.launchFailures,
          demotions: guard.demotions,
          recoveries: guard.recoveries,
          rejects: { ...counters.rejects }
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
              return Effect.map(Ref.get(accepting), (open) => ({ ready: open && !fdGuard.current().demoted }))
            case "shutdown":
              return Effect.as(Effect.forkDaemon(options.onShutdown ?? Effect.void), { accepted: true })
          }
        })()
        return { type: `admin.${request.verb}`, ...(request.request_id === undefined ? {} : { request_id: request.request_id }), body } as const
      })

    /** The reply to one frame; a bad frame is answered and closes the connection. */
    const answer = (result: FrameResult, rateLimit: (now: number) => RateDecision): Effect.Effect<Answer> => {
      if (Either.isLeft(result)) return Effect.map(reject("bad_frame", result.left.message, undefined), (error) => [error, true] as const)
      const request = decodeRequest(result.right)
      if (Either.isLeft(request)) {
        const { code, message, request_id } = request.left
        return Effect.map(reject(code, message, request_id), (error) => [error, code === "bad_frame"] as const)
      }
      const reply = request.right.type === "hello" ? hello(request.right, rateLimit) : admin(request.right)
      return Effect.map(reply, (ok) => [ok, false] as const)
    }

    /** Answers each whole frame in order, for as long as the peer sends them within the read deadline. */
    const serve = (connection: BoundedConnection): Effect.Effect<void> => {
      const frames = reads.connection(connection)
      // The connection's own token bucket: the limit is per connection, so its state is too (a shared
      // map of every connection's bucket was copied on every hello).
      let buckets: RateLimitState = initialRateLimitState
      const rateLimit = (now: number): RateDecision => {
        const { decision, state } = takeToken(defaultRateLimitPolicy, buckets, connection.id, now)
        buckets = state
        return decision
      }
      return Effect.gen(function*() {
        openConnections++
        yield* fdGuard.observeAccept
        while (true) {
          const batch = yield* frames.next
          if (Option.isNone(batch)) return
          for (const result of batch.value) {
            const [reply, close] = yield* answer(result, rateLimit)
            yield* connection.write(encodeReply(reply)).pipe(Effect.ignore)
            if (close) return
          }
        }
      }).pipe(Effect.ensuring(Effect.sync(() => {
        openConnections--
        frames.close()
      })))
    }

    yield* serveConnections(
      { name: "broker", path: socketPath, maxConnections: options.maxConnections ?? 256, handlerTimeoutMs: 3_600_000 },
      serve,
      {
        overCapacityReply: encodeReply({ type: "error", code: "overloaded", message: "broker at its connection limit", retry_after_ms: 100 }),
        onAcceptError: fdGuard.acceptFailed,
        // Idle peers (kept client connections, or ones that never send) must not lock other clients out.
        reclaimIdle: true
      }
    )
    Fs.chmodSync(socketPath, 0o600)
    yield* fdGuard.startSampling
    yield* Effect.addFinalizer(() => Effect.zipRight(Ref.set(accepting, false), Effect.sync(reads.drain)))
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
