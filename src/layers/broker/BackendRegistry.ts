/**
 * BackendRegistry: the broker's backends, launched on demand. Keyed by (service, version, sha256 of
 * the executable, fingerprint of the launch config), so a rebuilt binary or an edited definition gets
 * a new backend. Concurrent acquires of a missing key wait on one launch; a failed launch is never
 * cached; launches per key are bounded by a spawn budget; idle backends are stopped.
 */
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { Cause, Clock, Deferred, Effect, Either, Exit, Option, Ref, Schedule, Schema, Scope } from "effect"
import type { Endpoint } from "../../services/broker/BrokerProtocol.js"
import type { ConfigError } from "../../services/host/HostConfig.js"
import { type ChildHandle, describeExit, type ExitInfo, type LaunchSpec, ProcessLauncher } from "../../services/host/ProcessLauncher.js"
import { checkVersion, type ServiceDefinition, type ServiceDefinitions, type UnknownService } from "../../services/broker/ServiceDefinition.js"
import {
  defaultSpawnBudgetPolicy,
  makeSpawnBudget,
  type SpawnBudgetPolicy,
  type SpawnBudgetState,
  tryLaunch,
  usageByKey
} from "../../services/policies/SpawnBudget.js"
import { LoopbackPorts } from "../../services/system/LoopbackPorts.js"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { substitutePlaceholders } from "../../services/system/Placeholders.js"

/** The broker error codes an acquire can fail with. */
export const BackendErrorCode = Schema.Literal("unknown_service", "version_blocked", "launch_failed")
/** The broker error codes an acquire can fail with. */
export type BackendErrorCode = typeof BackendErrorCode.Type

/** An acquire that failed: `code` and `message` go into the broker's `error` reply as they are. */
export class BackendError extends Schema.TaggedError<BackendError>()("BackendError", {
  code: BackendErrorCode,
  service: Schema.String,
  message: Schema.String,
  /** Set when the spawn budget of the key is spent: when a launch will be allowed again (the reply's `retry_after_ms`). */
  retryAfterMs: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
}) {}

/** A backend for a hello. `launched` is true only for the acquire whose miss started the launch. */
export interface AcquiredBackend {
  readonly service: string
  readonly version: string
  readonly endpoint: Endpoint
  readonly instance: string
  readonly launched: boolean
  readonly pid: number
  readonly key: string
}

/** One backend in the admin snapshot; times are ISO-8601 strings from the Effect `Clock`. */
export interface BackendSnapshot {
  readonly service: string
  readonly version: string
  readonly instance: string
  readonly key: string
  readonly pid: number | null
  readonly endpoint: Endpoint | null
  readonly state: "starting" | "live" | "stopping"
  readonly started_at: string
  readonly last_hello_at: string | null
  /** Why it is stopping; otherwise the last failure seen for its key (a failed launch, a death). */
  readonly last_error: string | null
}

/** Monotonic counters for the admin snapshot and metrics. */
export interface RegistryCounters {
  /** Launch attempts started (each one spends the key's spawn budget). */
  readonly launches: number
  /** Acquires that found a launch in progress and waited on it. */
  readonly coalescedWaits: number
  /** Launch attempts that ended without a ready backend. */
  readonly launchFailures: number
  /** Acquires refused because the key's spawn budget was spent. */
  readonly budgetRefusals: number
  /** Backends removed because their process exited or their endpoint stopped accepting connections. */
  readonly pruned: number
  /** Backends stopped after `idle_exit_sec` without an acquire. */
  readonly idleExits: number
}

/** Spawn budget of one key, for the admin snapshot. */
export interface SpawnBudgetEntry {
  readonly key: string
  readonly used: number
  /** 0 while a launch is allowed. */
  readonly retry_after_ms: number
  readonly last_error: string | null
}

/** The broker's backends. */
export interface BackendRegistry {
  /** A live backend of `service` at `version` (or its default), launching one on a miss. */
  readonly acquire: (service: string, version?: string) => Effect.Effect<AcquiredBackend, BackendError>
  /** Every backend known: starting, live and stopping. */
  readonly snapshot: Effect.Effect<ReadonlyArray<BackendSnapshot>>
  /** Counters since the registry was made. */
  readonly counters: Effect.Effect<RegistryCounters>
  /** Keys with launch attempts inside the spawn-budget window. */
  readonly spawnBudgets: Effect.Effect<ReadonlyArray<SpawnBudgetEntry>>
  /** Cancels launches in progress and stops every backend (TERM → KILL), removing their socket files. */
  readonly stopAll: Effect.Effect<void>
}

/** How the registry is set up. */
export interface BackendRegistryOptions {
  /** The broker's run dir: unix backend sockets go in `<runDir>/backends/` (mode 0700). */
  readonly runDir: string
  /** Backend output goes to `<logsDir>/backend-<service>.log` (rotated). */
  readonly logsDir: string
  readonly definitions: ServiceDefinitions
  /** Launch attempts per key per window (default 3 per 30 s). */
  readonly spawnBudget?: SpawnBudgetPolicy
  /** TERM → KILL grace when a backend is stopped (default 3000 ms). */
  readonly stopTimeoutMs?: number
  /** How often backends are checked against their `idle_exit_sec` (default 1000 ms). */
  readonly idleSweepIntervalMs?: number
  /** Whether an endpoint accepts a connection (default: a real connect); simulations replace it. */
  readonly probeEndpoint?: (endpoint: Endpoint) => Effect.Effect<boolean>
}

/** Default TERM → KILL grace of a backend stop. */
export const defaultBackendStopTimeoutMs = 3_000

/** Default period of the idle sweeper. */
export const defaultIdleSweepIntervalMs = 1_000

/** How long one connect attempt of a readiness or liveness probe may take. */
export const probeTimeoutMs = 250

/** Pause between readiness probes. */
export const readyPollMs = 10

/** Failed connects in a row (20 ms apart) before a live backend is declared dead: a full backlog is not death. */
export const livenessAttempts = 3

/** How long a verified endpoint is trusted without a new connect probe. */
export const livenessCacheMs = 1_000

/** Longest unix socket path Linux accepts (`sun_path` minus its terminating NUL). */
const maxSocketPathBytes = 107

/** Keys whose last error is remembered for the snapshot. */
const rememberedErrors = 64

// ---- State --------------------------------------------------------------------------------------

interface Backend {
  readonly key: string
  readonly service: string
  readonly version: string
  readonly instance: string
  readonly endpoint: Endpoint
  readonly pid: number
  readonly startedAt: number
  readonly handle: ChildHandle
  /** Done once the process has exited. */
  readonly exited: Deferred.Deferred<ExitInfo>
  /** Stops the process (TERM → KILL) and removes the socket file; later calls wait for the first. */
  readonly stop: Effect.Effect<void>
}

interface Starting {
  readonly _tag: "Starting"
  readonly key: string
  readonly service: string
  readonly version: string
  readonly instance: string
  readonly startedAt: number
  readonly pid: number | null
  readonly endpoint: Endpoint | null
  readonly result: Deferred.Deferred<Backend, BackendError>
  readonly cancel: Deferred.Deferred<void>
}

interface Live {
  readonly _tag: "Live"
  readonly backend: Backend
  /** When its endpoint last accepted a connection (ready, or a liveness probe). */
  readonly verifiedAt: number
  readonly lastHelloAt: number
  readonly idleExitMs: number | undefined
}

interface Retiring {
  readonly backend: Backend
  readonly lastHelloAt: number | null
  readonly reason: string
}

interface RegistryState {
  readonly closed: boolean
  readonly slots: ReadonlyMap<string, Starting | Live>
  /** Backends being stopped, by instance. */
  readonly retiring: ReadonlyMap<string, Retiring>
  readonly budget: SpawnBudgetState
  readonly lastErrors: ReadonlyMap<string, string>
  readonly counters: RegistryCounters
}

const zeroCounters: RegistryCounters = {
  launches: 0,
  coalescedWaits: 0,
  launchFailures: 0,
  budgetRefusals: 0,
  pruned: 0,
  idleExits: 0
}

const count = (state: RegistryState, name: keyof RegistryCounters): RegistryState => ({
  ...state,
  counters: { ...state.counters, [name]: state.counters[name] + 1 }
})

const withSlot = (state: RegistryState, key: string, slot: Starting | Live | undefined): RegistryState => {
  const slots = new Map(state.slots)
  if (slot === undefined) slots.delete(key)
  else slots.set(key, slot)
  return { ...state, slots }
}

const withRetiring = (state: RegistryState, instance: string, entry: Retiring | undefined): RegistryState => {
  const retiring = new Map(state.retiring)
  if (entry === undefined) retiring.delete(instance)
  else retiring.set(instance, entry)
  return { ...state, retiring }
}

const withLastError = (state: RegistryState, key: string, message: string): RegistryState => {
  const lastErrors = new Map(state.lastErrors)
  lastErrors.delete(key)
  lastErrors.set(key, message)
  for (const oldest of lastErrors.keys()) {
    if (lastErrors.size <= rememberedErrors) break
    lastErrors.delete(oldest)
  }
  return { ...state, lastErrors }
}

// ---- Pure helpers -------------------------------------------------------------------------------

/** What one launch of a key needs, resolved from the definition at acquire time. */
interface LaunchPlan {
  readonly key: string
  readonly service: string
  readonly version: string
  readonly executable: string
  readonly definition: ServiceDefinition
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")

/** The launch config that shapes a process; a change to it is a new backend. */
const launchFingerprint = (definition: ServiceDefinition, executable: string): string =>
  sha256(JSON.stringify({
    executable,
    args: definition.launch.args,
    env: definition.launch.env,
    endpoint: definition.endpoint.kind,
    sandbox: definition.sandbox_profile
  })).slice(0, 12)

const endpointText = (endpoint: Endpoint): string =>
  endpoint.kind === "unix" ? endpoint.path : `${endpoint.host}:${endpoint.port}`

const idleExitMs = (definition: ServiceDefinition): number | undefined =>
  definition.idle_exit_sec === undefined ? undefined : definition.idle_exit_sec * 1000

const iso = (millis: number): string => new Date(millis).toISOString()


/** One connect attempt to `endpoint`, bounded by `timeoutMs`; true when it was accepted. */
export const connectProbe = (endpoint: Endpoint, timeoutMs: number = probeTimeoutMs): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = endpoint.kind === "unix"
      ? Net.createConnection({ path: endpoint.path })
      : Net.createConnection({ host: endpoint.host, port: endpoint.port })
    let settled = false
    const finish = (accepted: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(accepted))
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on("error", () => finish(false))
    socket.once("connect", () => finish(true))
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** sha256 of the file's bytes, streamed. */
const hashFile = (file: string): Effect.Effect<string, unknown> =>
  Effect.async<string, unknown>((resume) => {
    const hash = createHash("sha256")
    const stream = Fs.createReadStream(file)
    stream.on("error", (error) => resume(Effect.fail(error)))
    stream.on("data", (chunk) => hash.update(chunk))
    stream.on("end", () => resume(Effect.succeed(hash.digest("hex"))))
    return Effect.sync(() => stream.destroy())
  })

// ---- The registry -------------------------------------------------------------------------------

/**
 * Makes a registry whose backends live at most as long as the scope: its end refuses new acquires,
 * cancels launches in progress and stops every backend (TERM → KILL), removing their socket files.
 */
export const makeBackendRegistry = (
  options: BackendRegistryOptions
): Effect.Effect<BackendRegistry, never, ProcessLauncher | LoopbackPorts | Scope.Scope> =>
  Effect.gen(function*() {
    const launcher = yield* ProcessLauncher
    const registryScope = yield* Effect.scope
    const ports = yield* LoopbackPorts
    const { definitions } = options
    const backendsDir = Path.join(Path.resolve(options.runDir), "backends")
    const logsDir = Path.resolve(options.logsDir)
    const stopTimeoutMs = options.stopTimeoutMs ?? defaultBackendStopTimeoutMs
    const probe = options.probeEndpoint ?? ((endpoint: Endpoint) => connectProbe(endpoint))
    const state = yield* Ref.make<RegistryState>({
      closed: false,
      slots: new Map(),
      retiring: new Map(),
      budget: makeSpawnBudget(options.spawnBudget ?? defaultSpawnBudgetPolicy),
      lastErrors: new Map(),
      counters: zeroCounters
    })
    const digests = yield* Ref.make<ReadonlyMap<string, { readonly stamp: string; readonly digest: string }>>(new Map())

    // Socket files left by a broker that was killed (its backends died with it through pdeathsig).
    yield* Effect.sync(() => {
      try {
        for (const name of Fs.readdirSync(backendsDir)) {
          if (name.endsWith(".sock")) Fs.rmSync(Path.join(backendsDir, name), { force: true })
        }
      } catch {
        // No backends dir yet: nothing left over.
      }
    })

    const fail = (code: BackendErrorCode, service: string, message: string, retryAfterMs?: number) =>
      new BackendError({
        code,
        service,
        message,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs: Math.max(0, Math.ceil(retryAfterMs)) })
      })

    const definitionError = (service: string) => (error: ConfigError | UnknownService): BackendError =>
      error._tag === "UnknownService"
        ? fail("unknown_service", service, error.message)
        : fail("launch_failed", service, `service definition refused: ${error.message}`)

    /** sha256 of the executable, re-hashed only when its inode, size, mtime or ctime change. */
    const executableDigest = (plan: Omit<LaunchPlan, "key">): Effect.Effect<string, BackendError> =>
      Effect.gen(function*() {
        const { executable, service } = plan
        const where = `${Path.join(definitions.dir, `${service}.service.json`)}: launch.executable`
        const cannot = (error: unknown) =>
          fail(
            "launch_failed",
            service,
            errorCode(error) === "ENOENT"
              ? `executable ${executable} does not exist (${where})`
              : `cannot read executable ${executable} (${where}): ${errorText(error)}`
          )
        const stat = yield* Effect.tryPromise({
          try: () => Fs.promises.stat(executable, { bigint: true }),
          catch: cannot
        })
        if (!stat.isFile()) return yield* fail("launch_failed", service, `executable ${executable} is not a regular file (${where})`)
        const stamp = `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`
        const known = (yield* Ref.get(digests)).get(executable)
        if (known !== undefined && known.stamp === stamp) return known.digest
        const digest = yield* Effect.mapError(hashFile(executable), cannot)
        yield* Ref.update(digests, (map) => new Map(map).set(executable, { stamp, digest }))
        return digest
      })

    const recentOutput = (handle: ChildHandle) =>
      Effect.map(handle.recentLines, (lines) => {
        const tail = lines.slice(-5).join(" | ")
        return tail === "" ? "" : `; last output: ${tail}`
      })

    const updateStarting = (starting: Starting, patch: Partial<Pick<Starting, "pid" | "endpoint">>) =>
      Ref.update(state, (s) => {
        const slot = s.slots.get(starting.key)
        return slot !== undefined && slot._tag === "Starting" && slot.result === starting.result
          ? withSlot(s, starting.key, { ...slot, ...patch })
          : s
      })

    const stopOnce = (scope: Scope.CloseableScope, socketPath: string | undefined): Effect.Effect<Effect.Effect<void>> =>
      Effect.map(Effect.all([Ref.make(false), Deferred.make<void>()]), ([started, done]) =>
        Effect.uninterruptible(
          Effect.flatMap(Ref.getAndSet(started, true), (already) =>
            already
              ? Deferred.await(done)
              : Scope.close(scope, Exit.void).pipe(
                Effect.zipRight(Effect.sync(() => {
                  if (socketPath !== undefined) Fs.rmSync(socketPath, { force: true })
                })),
                Effect.ensuring(Deferred.succeed(done, undefined))
              ))
        ))

    /** A socket path in the backends dir: `<service>-<version>-<random>.sock`, shortened if too long. */
    const socketPathFor = (plan: LaunchPlan, random: string): Either.Either<string, string> => {
      const full = Path.join(backendsDir, `${plan.service}-${plan.version}-${random}.sock`)
      if (Buffer.byteLength(full) <= maxSocketPathBytes) return Either.right(full)
      const short = Path.join(backendsDir, `${random}.sock`)
      return Buffer.byteLength(short) <= maxSocketPathBytes
        ? Either.right(short)
        : Either.left(`the backends dir ${backendsDir} is too long for a unix socket path (max ${maxSocketPathBytes} bytes)`)
    }

    /** Waits until `endpoint` accepts a connection, failing early if the process exits first. */
    const awaitReady = (plan: LaunchPlan, handle: ChildHandle, endpoint: Endpoint, timeoutMs: number) => {
      const poll: Effect.Effect<void> = Effect.flatMap(probe(endpoint), (ready) =>
        ready ? Effect.void : Effect.zipRight(Effect.sleep(readyPollMs), poll))
      const died = Effect.flatMap(handle.exit, (info) =>
        Effect.flatMap(recentOutput(handle), (output) =>
          Effect.fail(fail(
            "launch_failed",
            plan.service,
            `backend ${plan.service} ${plan.version} (pid ${handle.pid}) ${describeExit(info)} before ` +
              `${endpointText(endpoint)} accepted a connection${output}`
          ))))
      return Effect.raceFirst(poll, died).pipe(
        Effect.timeout(Math.max(0, timeoutMs)),
        Effect.catchTag("TimeoutException", () =>
          Effect.flatMap(recentOutput(handle), (output) =>
            Effect.fail(fail(
              "launch_failed",
              plan.service,
              `backend ${plan.service} ${plan.version} (pid ${handle.pid}) did not accept a connection on ` +
                `${endpointText(endpoint)} within ready_timeout_ms ${plan.definition.ready_timeout_ms}; it was stopped${output}`
            ))))
      )
    }

    /** Starts the process and waits for readiness; on any failure or interruption nothing is left running. */
    const startBackend = (plan: LaunchPlan, starting: Starting): Effect.Effect<Backend, BackendError> =>
      Effect.gen(function*() {
        const { definition, service, version } = plan
        const startedAt = yield* Clock.currentTimeMillis
        const random = starting.instance.slice(starting.instance.lastIndexOf("-") + 1)
        const socketPath = definition.endpoint.kind === "unix"
          ? yield* Either.mapLeft(socketPathFor(plan, random), (reason) => fail("launch_failed", service, reason))
          : undefined
        const scope = yield* Scope.make()
        const stop = yield* stopOnce(scope, socketPath)
        return yield* Effect.gen(function*() {
          let endpoint: Endpoint
          if (socketPath !== undefined) {
            yield* Effect.try({
              try: () => {
                Fs.mkdirSync(backendsDir, { recursive: true, mode: 0o700 })
                Fs.chmodSync(backendsDir, 0o700)
                Fs.rmSync(socketPath, { force: true })
              },
              catch: (error) => fail("launch_failed", service, `cannot prepare ${backendsDir}: ${errorText(error)}`)
            })
            endpoint = { kind: "unix", path: socketPath }
          } else {
            const port = yield* Effect.mapError(ports.allocate, (error) =>
              fail("launch_failed", service, `cannot allocate a loopback port: ${error.message}`))
            endpoint = { kind: "tcp", host: "127.0.0.1", port }
          }
          yield* updateStarting(starting, { endpoint })
          const values = {
            version,
            endpoint: endpointText(endpoint),
            path: endpoint.kind === "unix" ? endpoint.path : "",
            port: endpoint.kind === "tcp" ? String(endpoint.port) : ""
          }
          const env: Record<string, string> = {}
          for (const [name, value] of Object.entries(definition.launch.env)) env[name] = substitutePlaceholders(value, values)
          env.CORRAL_BACKEND_ENDPOINT = endpointText(endpoint)
          const spec: LaunchSpec = {
            name: `backend ${service} ${version}`,
            executable: plan.executable,
            args: definition.launch.args.map((arg) => substitutePlaceholders(arg, values)),
            env,
            sandbox: definition.sandbox_profile,
            logFile: Path.join(logsDir, `backend-${service}.log`)
          }
          const handle = yield* launcher.launch(spec, stopTimeoutMs).pipe(
            Scope.extend(scope),
            Effect.mapError((error) => fail("launch_failed", service, error.message))
          )
          yield* updateStarting(starting, { pid: handle.pid })
          const elapsed = (yield* Clock.currentTimeMillis) - startedAt
          yield* awaitReady(plan, handle, endpoint, definition.ready_timeout_ms - elapsed)
          const exited = yield* Deferred.make<ExitInfo>()
          return {
            key: plan.key,
            service,
            version,
            instance: starting.instance,
            endpoint,
            pid: handle.pid,
            startedAt: starting.startedAt,
            handle,
            exited,
            stop
          } satisfies Backend
        }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : stop)))
      })

    /** Stops a retired backend and forgets it. */
    const stopRetired = (backend: Backend) =>
      Effect.zipRight(backend.stop, Ref.update(state, (s) => withRetiring(s, backend.instance, undefined)))

    /** Takes `backend` out of service (if it is still the live one of its key) and stops it in the background. */
    const retire = (backend: Backend, reason: string): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          Ref.modify(state, (s) => {
            const slot = s.slots.get(backend.key)
            if (slot === undefined || slot._tag !== "Live" || slot.backend !== backend) return [false, s] as const
            const next = withRetiring(withSlot(s, backend.key, undefined), backend.instance, {
              backend,
              lastHelloAt: slot.lastHelloAt,
              reason
            })
            return [true, count(withLastError(next, backend.key, `${reason} (at ${iso(now)})`), "pruned")] as const
          }),
          (taken) =>
            taken
              ? Effect.zipRight(
                Effect.logWarning(`backend ${backend.instance} (pid ${backend.pid}) removed: ${reason}`),
                Effect.asVoid(Effect.forkIn(stopRetired(backend), registryScope))
              )
              : Effect.void
        ))

    /** Watches a registered backend's process: its exit retires it at once. */
    const watchExit = (backend: Backend) =>
      Effect.forkIn(
        Effect.interruptible(Effect.flatMap(backend.handle.exit, (info) =>
          Effect.zipRight(Deferred.succeed(backend.exited, info), retire(backend, `process ${describeExit(info)}`)))),
        registryScope
      )

    /** One launch, run in its own fiber so an interrupted acquire never abandons the waiters. */
    const runLaunch = (plan: LaunchPlan, starting: Starting): Effect.Effect<void> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const cancelled = Effect.zipRight(
            Deferred.await(starting.cancel),
            Effect.fail(fail("launch_failed", plan.service, `launch of ${plan.service} ${plan.version} cancelled: the broker is stopping`))
          )
          const outcome = yield* Effect.exit(restore(Effect.raceFirst(startBackend(plan, starting), cancelled)))
          const now = yield* Clock.currentTimeMillis
          if (Exit.isSuccess(outcome)) {
            const backend = outcome.value
            const registered = yield* Ref.modify(state, (s) => {
              const slot = s.slots.get(plan.key)
              if (s.closed || slot === undefined || slot._tag !== "Starting" || slot.result !== starting.result) {
                return [false, s] as const
              }
              const live: Live = { _tag: "Live", backend, verifiedAt: now, lastHelloAt: now, idleExitMs: idleExitMs(plan.definition) }
              return [true, withSlot(s, plan.key, live)] as const
            })
            if (registered) {
              yield* watchExit(backend)
              yield* Deferred.succeed(starting.result, backend)
              return
            }
            yield* backend.stop
          }
          const error = Exit.isSuccess(outcome)
            ? fail("launch_failed", plan.service, `launch of ${plan.service} ${plan.version} cancelled: the broker is stopping`)
            : Option.getOrElse(
              Cause.failureOption(outcome.cause),
              () => fail("launch_failed", plan.service, `launch of ${plan.service} ${plan.version} was interrupted`)
            )
          yield* Ref.update(state, (s) => {
            const slot = s.slots.get(plan.key)
            const cleared = slot !== undefined && slot._tag === "Starting" && slot.result === starting.result
              ? withSlot(s, plan.key, undefined)
              : s
            return count(withLastError(cleared, plan.key, error.message), "launchFailures")
          })
          yield* Effect.logWarning(error.message)
          yield* Deferred.fail(starting.result, error)
        })
      )

    /** Records that `backend`'s endpoint just accepted a connection. */
    const markVerified = (key: string, backend: Backend) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(state, (s) => {
          const slot = s.slots.get(key)
          return slot?._tag === "Live" && slot.backend === backend ? withSlot(s, key, { ...slot, verifiedAt: now }) : s
        }))

    /** Live unless its process exited or its endpoint refuses `livenessAttempts` connects in a row. */
    const isAlive = (backend: Backend): Effect.Effect<boolean> => {
      const attempt = (left: number): Effect.Effect<boolean> =>
        Effect.flatMap(probe(backend.endpoint), (accepted) =>
          accepted || left <= 1 ? Effect.succeed(accepted) : Effect.zipRight(Effect.sleep(20), attempt(left - 1)))
      return Effect.flatMap(Deferred.isDone(backend.exited), (exited) => (exited ? Effect.succeed(false) : attempt(livenessAttempts)))
    }

    const answer = (backend: Backend, launched: boolean): AcquiredBackend => ({
      service: backend.service,
      version: backend.version,
      endpoint: backend.endpoint,
      instance: backend.instance,
      launched,
      pid: backend.pid,
      key: backend.key
    })

    type Step =
      | { readonly _tag: "Reuse"; readonly backend: Backend; readonly verifiedAt: number }
      | { readonly _tag: "Wait"; readonly starting: Starting }
      | { readonly _tag: "Launch"; readonly starting: Starting }
      | { readonly _tag: "Refuse"; readonly error: BackendError }

    const awaitLaunch = (plan: LaunchPlan, starting: Starting, launched: boolean) =>
      Deferred.await(starting.result).pipe(
        // The launch answers within ready_timeout_ms plus a stop; this bound only guards against a bug.
        Effect.timeoutFail({
          duration: plan.definition.ready_timeout_ms + stopTimeoutMs + 5_000,
          onTimeout: () => fail("launch_failed", plan.service, `launch of ${plan.service} ${plan.version} gave no answer`)
        }),
        Effect.map((backend) => answer(backend, launched))
      )

    const acquireKey = (plan: LaunchPlan, round: number): Effect.Effect<AcquiredBackend, BackendError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const result = yield* Deferred.make<Backend, BackendError>()
        const cancel = yield* Deferred.make<void>()
        const random = randomBytes(4).toString("hex")
        const decide = Ref.modify(state, (s): readonly [Step, RegistryState] => {
          if (s.closed) {
            return [{ _tag: "Refuse", error: fail("launch_failed", plan.service, "the broker is stopping") }, s]
          }
          const slot = s.slots.get(plan.key)
          if (slot?._tag === "Live") {
            // Touched now, so the idle sweeper cannot pick it while this acquire checks it.
            const touched: Live = { ...slot, lastHelloAt: now, idleExitMs: idleExitMs(plan.definition) }
            return [{ _tag: "Reuse", backend: slot.backend, verifiedAt: slot.verifiedAt }, withSlot(s, plan.key, touched)]
          }
          if (slot?._tag === "Starting") return [{ _tag: "Wait", starting: slot }, count(s, "coalescedWaits")]
          const budget = tryLaunch(s.budget, plan.key, now)
          if (!budget.decision.allowed) {
            const { retryAfterMs } = budget.decision
            const last = s.lastErrors.get(plan.key)
            const error = fail(
              "launch_failed",
              plan.service,
              `spawn budget of ${plan.service} ${plan.version} spent (${s.budget.policy.maxLaunches} launches per ` +
                `${s.budget.policy.windowMs / 1000} s); retry in ${Math.ceil(retryAfterMs)} ms` +
                (last === undefined ? "" : `; last error: ${last}`),
              retryAfterMs
            )
            return [{ _tag: "Refuse", error }, count({ ...s, budget: budget.state }, "budgetRefusals")]
          }
          const starting: Starting = {
            _tag: "Starting",
            key: plan.key,
            service: plan.service,
            version: plan.version,
            instance: `${plan.service}-${plan.version}-${random}`,
            startedAt: now,
            pid: null,
            endpoint: null,
            result,
            cancel
          }
          return [{ _tag: "Launch", starting }, count({ ...withSlot(s, plan.key, starting), budget: budget.state }, "launches")]
        })
        // The slot and the fiber that settles it come into being together: an interrupted acquire
        // cannot leave a launch nobody runs. The launch fiber starts interruptible for its own timeouts.
        const step = yield* Effect.uninterruptible(Effect.tap(decide, (decided) =>
          decided._tag === "Launch"
            ? Effect.forkDaemon(Effect.interruptible(runLaunch(plan, decided.starting)))
            : Effect.void))
        switch (step._tag) {
          case "Refuse":
            return yield* step.error
          case "Wait":
            return yield* awaitLaunch(plan, step.starting, false)
          case "Launch":
            return yield* awaitLaunch(plan, step.starting, true)
          case "Reuse": {
            // A connect probe per hello would flood a thread-per-connection backend's accept queue
            // under load and get it retired as dead: an endpoint verified within the last second
            // is trusted while its process lives.
            const exitedAlready = yield* Deferred.isDone(step.backend.exited)
            if (!exitedAlready && now - step.verifiedAt < livenessCacheMs) return answer(step.backend, false)
            if (yield* isAlive(step.backend)) {
              yield* markVerified(plan.key, step.backend)
              return answer(step.backend, false)
            }
            const exited = yield* Deferred.poll(step.backend.exited)
            const reason = Option.isSome(exited)
              ? `process ${describeExit(yield* exited.value)}`
              : `endpoint ${endpointText(step.backend.endpoint)} no longer accepts connections`
            yield* retire(step.backend, reason)
            if (round >= 2) {
              return yield* fail("launch_failed", plan.service, `no live backend of ${plan.service} ${plan.version} after ${round + 1} attempts`)
            }
            return yield* acquireKey(plan, round + 1)
          }
        }
      })

    const acquire = (service: string, requested?: string): Effect.Effect<AcquiredBackend, BackendError> =>
      Effect.gen(function*() {
        const definition = yield* Effect.mapError(definitions.lookup(service), definitionError(service))
        const version = yield* Either.mapLeft(
          checkVersion(definition, requested),
          (blocked) => fail(blocked.code, service, blocked.message)
        )
        const executable = substitutePlaceholders(definition.launch.executable, { version })
        const digest = yield* executableDigest({ service, version, executable, definition })
        const key = `${service}@${version}/sha256:${digest}/launch:${launchFingerprint(definition, executable)}`
        return yield* acquireKey({ key, service, version, executable, definition }, 0)
      })

    const sweepIdle = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const idle = yield* Ref.modify(state, (s) => {
        let next = s
        const picked: Array<Backend> = []
        for (const slot of s.slots.values()) {
          if (slot._tag !== "Live" || slot.idleExitMs === undefined || now - slot.lastHelloAt < slot.idleExitMs) continue
          picked.push(slot.backend)
          next = withRetiring(withSlot(next, slot.backend.key, undefined), slot.backend.instance, {
            backend: slot.backend,
            lastHelloAt: slot.lastHelloAt,
            reason: `idle for ${slot.idleExitMs / 1000} s (idle_exit_sec)`
          })
          next = count(next, "idleExits")
        }
        return [picked, next] as const
      })
      yield* Effect.forEach(idle, stopRetired, { concurrency: "unbounded", discard: true })
    })

    const stopAll: Effect.Effect<void> = Effect.gen(function*() {
      const starting = [...(yield* Ref.get(state)).slots.values()].filter((slot): slot is Starting => slot._tag === "Starting")
      yield* Effect.forEach(starting, (slot) => Deferred.succeed(slot.cancel, undefined), { discard: true })
      yield* Effect.forEach(starting, (slot) => Effect.exit(Deferred.await(slot.result)), {
        concurrency: "unbounded",
        discard: true
      })
      const retiring = yield* Ref.modify(state, (s) => {
        let next = s
        for (const slot of s.slots.values()) {
          if (slot._tag !== "Live") continue
          next = withRetiring(withSlot(next, slot.backend.key, undefined), slot.backend.instance, {
            backend: slot.backend,
            lastHelloAt: slot.lastHelloAt,
            reason: "stopped with all backends"
          })
        }
        return [[...next.retiring.values()], next] as const
      })
      yield* Effect.forEach(retiring, (entry) => stopRetired(entry.backend), { concurrency: "unbounded", discard: true })
    })

    yield* Effect.addFinalizer(() => Effect.zipRight(Ref.update(state, (s) => ({ ...s, closed: true })), stopAll))
    yield* Effect.forkScoped(Effect.interruptible(
      Effect.repeat(sweepIdle, Schedule.spaced(options.idleSweepIntervalMs ?? defaultIdleSweepIntervalMs))
    ))

    const snapshot = Effect.map(Ref.get(state), (s): ReadonlyArray<BackendSnapshot> => [
      ...[...s.slots.values()].map((slot): BackendSnapshot =>
        slot._tag === "Starting"
          ? {
            service: slot.service,
            version: slot.version,
            instance: slot.instance,
            key: slot.key,
            pid: slot.pid,
            endpoint: slot.endpoint,
            state: "starting",
            started_at: iso(slot.startedAt),
            last_hello_at: iso(slot.startedAt),
            last_error: s.lastErrors.get(slot.key) ?? null
          }
          : {
            service: slot.backend.service,
            version: slot.backend.version,
            instance: slot.backend.instance,
            key: slot.backend.key,
            pid: slot.backend.pid,
            endpoint: slot.backend.endpoint,
            state: "live",
            started_at: iso(slot.backend.startedAt),
            last_hello_at: iso(slot.lastHelloAt),
            last_error: s.lastErrors.get(slot.backend.key) ?? null
          }
      ),
      ...[...s.retiring.values()].map(({ backend, lastHelloAt, reason }): BackendSnapshot => ({
        service: backend.service,
        version: backend.version,
        instance: backend.instance,
        key: backend.key,
        pid: backend.pid,
        endpoint: backend.endpoint,
        state: "stopping",
        started_at: iso(backend.startedAt),
        last_hello_at: lastHelloAt === null ? null : iso(lastHelloAt),
        last_error: reason
      }))
    ])

    const spawnBudgets = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(Ref.get(state), (s): ReadonlyArray<SpawnBudgetEntry> =>
        usageByKey(s.budget, now).map(({ key, retryAfterMs, used }) => ({
          key,
          used,
          retry_after_ms: retryAfterMs,
          last_error: s.lastErrors.get(key) ?? null
        }))))

    return {
      acquire,
      snapshot,
      counters: Effect.map(Ref.get(state), (s) => s.counters),
      spawnBudgets,
      stopAll
    } satisfies BackendRegistry
  })
