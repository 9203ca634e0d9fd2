/**
 * BackendRegistry: the broker's backends, launched on demand. Concurrent acquires of a missing key
 * wait on one launch; a failed launch is never cached; launches per key are bounded by a spawn
 * budget; dead backends are retired and idle ones stopped.
 */
import * as Path from "node:path"
import { Cause, Clock, Deferred, Effect, Either, Exit, Layer, Option, Ref, Schedule, Scope } from "effect"
import {
  type AcquiredBackend,
  BackendError,
  BackendRegistry,
  type BackendRegistryShape,
  launchFailed
} from "../../../services/broker/BackendRegistry.js"
import { checkVersion, ServiceDefinitions, type UnknownService } from "../../../services/broker/ServiceDefinition.js"
import type { ConfigError } from "../../../services/host/HostConfig.js"
import type { UntrustedFile } from "../../../services/system/FileTrust.js"
import { describeExit, ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { defaultBackendSlotPolicy } from "../../../services/policies/BackendSlot.js"
import { defaultSpawnBudgetPolicy, type SpawnBudgetPolicy } from "../../../services/policies/SpawnBudget.js"
import { LoopbackPorts } from "../../../services/system/LoopbackPorts.js"
import { substitutePlaceholders } from "../../../services/system/Placeholders.js"
import { backendEvent, brokerEventPublisher } from "../BrokerEvents.js"
import { countLaunch } from "../BrokerMetrics.js"
import { connectProbe, type EndpointProbe, endpointText, isAlive } from "./EndpointProbe.js"
import { backendKey, makeExecutableDigests } from "./ExecutableDigest.js"
import { idleExitMsOf, type LaunchContext, type LaunchPlan, removeLeftoverSockets, startBackend } from "./Launching.js"
import { guardLaunch, newLaunch, noLaunch } from "./LaunchRecord.js"
import { backendsOf, spawnBudgetsOf } from "./RegistrySnapshot.js"
import {
  type AcquireStep,
  type Backend,
  close,
  decideAcquire,
  forgetRetired,
  initialRegistryState,
  markVerified,
  type PendingLaunch,
  pendingLaunches,
  type RegistryState,
  recordLaunchFailure,
  registerBackend,
  retire,
  retireAll,
  takeIdle,
  updateLaunch
} from "./RegistryState.js"

/** How the registry is set up. */
export interface BackendRegistryOptions {
  /** The broker's run dir: unix backend sockets go in `<runDir>/backends/` (mode 0700). */
  readonly runDir: string
  /** Backend output goes to `<logsDir>/backend-<service>.log` (rotated). */
  readonly logsDir: string
  /** Launch attempts per key per window (default 3 per 30 s). */
  readonly spawnBudget?: SpawnBudgetPolicy
  /** TERM → KILL grace when a backend is stopped (default 3000 ms). */
  readonly stopTimeoutMs?: number
  /** How often backends are checked against their `idle_exit_sec` (default 1000 ms). */
  readonly idleSweepIntervalMs?: number
  /** Whether an endpoint accepts a connection (default: a real connect); simulations replace it. */
  readonly probeEndpoint?: EndpointProbe
}

/** Default TERM → KILL grace of a backend stop. */
export const defaultBackendStopTimeoutMs = 3_000

/** Default period of the idle sweeper. */
export const defaultIdleSweepIntervalMs = 1_000

const definitionError = (service: string) => (error: ConfigError | UnknownService | UntrustedFile): BackendError =>
  error._tag === "UnknownService"
    ? new BackendError({ code: "unknown_service", service, message: error.message })
    : launchFailed(service, `service definition refused: ${error.message}`)

const cancelled = (plan: LaunchPlan): BackendError =>
  launchFailed(plan.service, `launch of ${plan.service} ${plan.version} cancelled: the broker is stopping`)

const answer = (backend: Backend, launched: boolean): AcquiredBackend => ({
  service: backend.service,
  version: backend.version,
  endpoint: backend.endpoint,
  instance: backend.instance,
  launched,
  pid: backend.pid,
  key: backend.key
})

/**
 * Makes a registry whose backends live at most as long as the scope: its end refuses new acquires,
 * cancels launches in progress and stops every backend (TERM → KILL), removing their socket files.
 */
export const makeBackendRegistry = (
  options: BackendRegistryOptions
): Effect.Effect<BackendRegistryShape, never, ServiceDefinitions | ProcessLauncher | LoopbackPorts | Scope.Scope> =>
  Effect.gen(function*() {
    const definitions = yield* ServiceDefinitions
    const registryScope = yield* Effect.scope
    const context: LaunchContext = {
      launcher: yield* ProcessLauncher,
      ports: yield* LoopbackPorts,
      backendsDir: Path.join(Path.resolve(options.runDir), "backends"),
      logsDir: Path.resolve(options.logsDir),
      stopTimeoutMs: options.stopTimeoutMs ?? defaultBackendStopTimeoutMs,
      probe: options.probeEndpoint ?? ((endpoint) => connectProbe(endpoint))
    }
    const budgetPolicy = options.spawnBudget ?? defaultSpawnBudgetPolicy
    const slotPolicy = defaultBackendSlotPolicy
    const state = yield* Ref.make(initialRegistryState(budgetPolicy))
    const executables = yield* makeExecutableDigests(definitions.dir)
    const publishEvent = yield* brokerEventPublisher
    yield* removeLeftoverSockets(context.backendsDir)

    /** Stops a retired backend and forgets it. */
    const stopRetired = (backend: Backend) => Effect.zipRight(backend.stop, Ref.update(state, (s) => forgetRetired(s, backend)))

    /** Takes `backend` out of service (if it is still the live one of its key) and stops it in the background. */
    const retireBackend = (backend: Backend, reason: string): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(Ref.modify(state, (s) => retire(s, backend, reason, now)), (taken) =>
          taken
            ? Effect.zipRight(
              Effect.logWarning(`backend ${backend.instance} (pid ${backend.pid}) removed: ${reason}`),
              Effect.asVoid(Effect.forkIn(stopRetired(backend), registryScope))
            )
            : Effect.void))

    /** Watches a registered backend's process: its exit retires it at once. */
    const watchExit = (backend: Backend) =>
      Effect.forkIn(
        Effect.interruptible(Effect.flatMap(backend.handle.exit, (info) =>
          Effect.zipRight(Deferred.succeed(backend.exited, info), retireBackend(backend, `the process ${describeExit(info)}`)).pipe(
            Effect.zipRight(publishEvent(backendEvent("exited", backend, `${backend.instance}: the process ${describeExit(info)}`)))
          ))),
        registryScope
      )

    /** One launch, run in its own fiber so an interrupted acquire never abandons the waiters. */
    const runLaunch = (plan: LaunchPlan, launch: PendingLaunch): Effect.Effect<void> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const progress = (patch: Partial<Pick<PendingLaunch, "pid" | "endpoint">>) =>
            Ref.update(state, (s) => updateLaunch(s, launch, patch))
          const cancel = Effect.zipRight(Deferred.await(launch.cancel), Effect.fail(cancelled(plan)))
          yield* countLaunch(plan.service)
          // The trust walk again, uncached, right before anything runs: a verdict cached for hellos never launches.
          const start = Effect.zipRight(executables.checkBeforeLaunch(plan.service, plan.executable), startBackend(context, plan, launch, progress))
          const outcome = yield* Effect.exit(restore(Effect.raceFirst(start, cancel)))
          const now = yield* Clock.currentTimeMillis
          if (Exit.isSuccess(outcome)) {
            const backend = outcome.value
            const registered = yield* Ref.modify(state, (s) => registerBackend(s, launch, backend, idleExitMsOf(plan.definition), now))
            if (registered) {
              yield* publishEvent(backendEvent("launched", backend, `${backend.instance} on ${endpointText(backend.endpoint)}`))
              yield* watchExit(backend)
              yield* Deferred.succeed(launch.result, backend)
              return
            }
            yield* backend.stop
          }
          const error = Exit.isSuccess(outcome)
            ? cancelled(plan)
            : Option.getOrElse(
              Cause.failureOption(outcome.cause),
              () => launchFailed(plan.service, `launch of ${plan.service} ${plan.version} was interrupted`)
            )
          yield* Ref.update(state, (s) => recordLaunchFailure(s, launch, error.message))
          yield* Effect.logWarning(error.message)
          yield* Deferred.fail(launch.result, error)
        })
      )

    const awaitLaunch = (launch: PendingLaunch, launched: boolean) =>
      Effect.map(Deferred.await(launch.result), (backend) => answer(backend, launched))

    /** Answers a live backend, after probing it unless it was verified recently; a dead one is retired and the key asked again. */
    const reuse = (plan: LaunchPlan, backend: Backend, trusted: boolean, deadBackends: number) =>
      Effect.flatMap(Deferred.isDone(backend.exited), (exited) =>
        // Trust ends with the process: an exit already seen is never answered.
        trusted && !exited ? Effect.succeed(answer(backend, false)) : probeThenReuse(plan, backend, deadBackends))

    const probeThenReuse = (plan: LaunchPlan, backend: Backend, deadBackends: number): Effect.Effect<AcquiredBackend, BackendError> =>
      Effect.gen(function*() {
        if (yield* isAlive(context.probe, backend.endpoint, Deferred.isDone(backend.exited))) {
          const now = yield* Clock.currentTimeMillis
          yield* Ref.update(state, (s) => markVerified(s, plan.key, backend, now))
          return answer(backend, false)
        }
        const exited = yield* Deferred.poll(backend.exited)
        const reason = Option.isSome(exited)
          ? `the process ${describeExit(yield* exited.value)}`
          : `endpoint ${endpointText(backend.endpoint)} no longer accepts connections`
        yield* retireBackend(backend, reason)
        return yield* acquireKey(plan, deadBackends + 1)
      })

    const acquireKey = (plan: LaunchPlan, deadBackends: number): Effect.Effect<AcquiredBackend, BackendError> =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        // The launch record is built inside the atomic step, and only for a key without a slot: the
        // policy launches no other (a warm hello builds nothing it would throw away).
        const decide = (s: RegistryState) => {
          const launch = s.slots.has(plan.key) ? noLaunch : newLaunch(plan, now)
          return decideAcquire(slotPolicy, s, { key: plan.key, deadBackends, launch, idleExitMs: idleExitMsOf(plan.definition) }, now)
        }
        // The slot and the fiber that settles it come into being together: an interrupted acquire
        // cannot leave a launch nobody runs. The launch fiber starts interruptible for its own timeouts.
        const step = Effect.uninterruptible(Effect.tap(
          Ref.modify(state, decide),
          (step) =>
            step.decision._tag !== "Launch"
              ? Effect.void
              : step.decision.launch === noLaunch
              ? Effect.dieMessage(`registry: the slot policy launched ${plan.key}, which had a slot`)
              : Effect.zipRight(
                Effect.forkDaemon(Effect.interruptible(runLaunch(plan, step.decision.launch))),
                Effect.forkIn(Effect.interruptible(guardLaunch(plan, step.decision.launch, context.stopTimeoutMs)), registryScope)
              )
        ))
        return Effect.flatMap(step, ({ decision, lastError }) => follow(plan, decision, lastError, deadBackends))
      })

    /** Carries out the slot policy's decision on an acquire. */
    const follow = (
      plan: LaunchPlan,
      decision: AcquireStep["decision"],
      lastError: string | undefined,
      deadBackends: number
    ): Effect.Effect<AcquiredBackend, BackendError> => {
      switch (decision._tag) {
        case "Stopping":
          return launchFailed(plan.service, "the broker is stopping")
        case "GiveUp":
          return launchFailed(plan.service, `no live backend of ${plan.service} ${plan.version} after ${decision.deadBackends} attempts`)
        case "BudgetSpent":
          return new BackendError({
            code: "launch_failed",
            service: plan.service,
            message: `spawn budget of ${plan.service} ${plan.version} spent (${budgetPolicy.maxLaunches} launches per ` +
              `${budgetPolicy.windowMs / 1000} s); retry in ${Math.ceil(decision.retryAfterMs)} ms` +
              (lastError === undefined ? "" : `; last error: ${lastError}`),
            retryAfterMs: Math.max(0, Math.ceil(decision.retryAfterMs))
          })
        case "Wait":
          return awaitLaunch(decision.launch, false)
        case "Launch":
          return awaitLaunch(decision.launch, true)
        case "Reuse":
          return reuse(plan, decision.backend, decision.trusted, deadBackends)
      }
    }

    // No generator on the way of a warm hello: each step is one flatMap.
    const acquire = (service: string, requested?: string): Effect.Effect<AcquiredBackend, BackendError> =>
      Effect.flatMap(Effect.mapError(definitions.lookup(service), definitionError(service)), (definition) => {
        const version = checkVersion(definition, requested)
        if (Either.isLeft(version)) return new BackendError({ code: version.left.code, service, message: version.left.message })
        const executable = substitutePlaceholders(definition.launch.executable, { version: version.right })
        return Effect.flatMap(executables.digest(service, executable), (digest) => {
          const parts = { service, version: version.right, executable, definition }
          return acquireKey({ ...parts, key: backendKey(parts, digest) }, 0)
        })
      })

    const sweepIdle = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(Ref.modify(state, (s) => takeIdle(s, now)), (idle) =>
        Effect.forEach(idle, stopRetired, { concurrency: "unbounded", discard: true })))

    const stopAll: Effect.Effect<void> = Effect.gen(function*() {
      const launches = pendingLaunches(yield* Ref.get(state))
      yield* Effect.forEach(launches, (launch) => Deferred.succeed(launch.cancel, undefined), { discard: true })
      yield* Effect.forEach(launches, (launch) => Effect.exit(Deferred.await(launch.result)), {
        concurrency: "unbounded",
        discard: true
      })
      const retiring = yield* Ref.modify(state, retireAll)
      yield* Effect.forEach(retiring, (entry) => stopRetired(entry.backend), { concurrency: "unbounded", discard: true })
    })

    yield* Effect.addFinalizer(() => Effect.zipRight(Ref.update(state, close), stopAll))
    yield* Effect.forkScoped(Effect.interruptible(
      Effect.repeat(sweepIdle, Schedule.spaced(options.idleSweepIntervalMs ?? defaultIdleSweepIntervalMs))
    ))

    return {
      acquire,
      snapshot: Effect.map(Ref.get(state), backendsOf),
      counters: Effect.map(Ref.get(state), (s) => s.counters),
      spawnBudgets: Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(Ref.get(state), (s) => spawnBudgetsOf(s, now))),
      stopAll
    } satisfies BackendRegistryShape
  })

/** The broker's backend registry on the host's service definitions, process launcher and port allocator. */
export const BackendRegistryLive = (
  options: BackendRegistryOptions
): Layer.Layer<BackendRegistry, never, ServiceDefinitions | ProcessLauncher | LoopbackPorts> =>
  Layer.scoped(BackendRegistry, makeBackendRegistry(options))
