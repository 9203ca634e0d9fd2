/**
 * The supervisor of `http_local_json` components. Each component has one lifecycle fiber at most;
 * operator commands on a component are serialized by its own semaphore; its state lives in a
 * `SubscriptionRef`; every phase change is an event on a `PubSub` and a lifecycle trace line.
 */
import { Clock, Duration, Effect, ExecutionStrategy, Fiber, Layer, Option, PubSub, Random, Ref, Scope, Stream, SubscriptionRef } from "effect"
import type { ComponentView } from "../../../services/host/Component.js"
import { EffectiveConfig } from "../../../services/host/EffectiveConfig.js"
import { defaultHttpConfig, type HostConfig } from "../../../services/host/HostConfig.js"
import { HostPaths } from "../../../services/host/HostPaths.js"
import { ModuleClient } from "../../../services/host/ModuleClient.js"
import { type ChildHandle, describeExit, ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { Supervisor, type SupervisorShape, UnknownComponent } from "../../../services/host/Supervisor.js"
import { type LifecycleEvent, TraceLog } from "../../../services/host/Traces.js"
import { LoopbackPorts } from "../../../services/system/LoopbackPorts.js"
import { budgetUsage, initialRestartBudget, onFailure } from "../../../services/policies/RestartBudget.js"
import { initialState, isSupervised, type Managed } from "./ComponentState.js"
import { runComponentOnce, type RunContext } from "./ComponentRun.js"
import { makeHealthWatch } from "./HealthWatch.js"
import { makeTransitions } from "./Transitions.js"

/** What the supervisor supervises, where it keeps its files, and where lifecycle events go besides the PubSub. */
export interface SupervisorOptions {
  readonly config: HostConfig
  readonly dataDir: string
  /** Appends one lifecycle event to `trace/lifecycle.jsonl`. */
  readonly traceLifecycle: (event: LifecycleEvent) => Effect.Effect<void>
}

/** Builds the supervisor; its scope's end stops every component (TERM → grace → KILL). */
export const makeSupervisor = (
  options: SupervisorOptions
): Effect.Effect<SupervisorShape, never, ProcessLauncher | ModuleClient | LoopbackPorts | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* ModuleClient
    const events = yield* PubSub.sliding<LifecycleEvent>(1_024)
    const transitions = makeTransitions(events, options.traceLifecycle)
    const health = makeHealthWatch(client, transitions)
    const run: RunContext = {
      config: options.config,
      dataDir: options.dataDir,
      launcher: yield* ProcessLauncher,
      client,
      ports: yield* LoopbackPorts,
      transitions,
      health
    }
    const { transition } = transitions
    // Lifecycle fibers live in their own scope, closed after the stop finalizer below has run, so
    // components are stopped (with their phases published) before anything is interrupted.
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))

    const components = new Map<string, Managed>()
    for (const [id, component] of Object.entries(options.config.components)) {
      components.set(id, {
        id,
        config: component,
        state: yield* SubscriptionRef.make(initialState(component)),
        lifecycle: yield* Ref.make(Option.none<Fiber.RuntimeFiber<void>>()),
        child: yield* Ref.make(Option.none<ChildHandle>()),
        commands: yield* Effect.makeSemaphore(1)
      })
    }

    const lookup = (id: string) => {
      const managed = components.get(id)
      return managed === undefined ? Effect.fail(new UnknownComponent({ component: id })) : Effect.succeed(managed)
    }

    /** Runs, restarts under the budget, and ends in `failed` when it is spent or a failure is fatal. */
    const lifecycle = (managed: Managed): Effect.Effect<void> =>
      Effect.gen(function*() {
        yield* transition(managed, "starting", "start requested", { lastError: null, report: null, lastStop: null })
        // Launches in a row that found the host out of descriptors: retried with backoff, outside the budget.
        let starved = 0
        while (true) {
          const end = yield* runComponentOnce(run, managed)
          yield* Ref.set(managed.child, Option.none())
          if (end._tag === "Fatal") {
            const reason = end.failure.message
            yield* transition(managed, "failed", reason, { lastError: reason, pid: null, endpoint: null })
            return
          }
          if (end._tag === "OutOfDescriptors") {
            const { backoff_initial_ms, backoff_max_ms } = managed.config.restart_policy
            const delayMs = Math.min(backoff_max_ms, backoff_initial_ms * 2 ** Math.min(starved++, 16))
            const at = yield* Clock.currentTimeMillis
            yield* transition(
              managed,
              "starting",
              `${end.detail}; the host is out of descriptors, retrying in ${delayMs} ms (not counted against the restart budget)`,
              { lastError: end.detail, pid: null, endpoint: null, nextAttemptAt: at + delayMs, report: null }
            )
            yield* Effect.sleep(Duration.millis(delayMs))
            continue
          }
          starved = 0
          const now = yield* Clock.currentTimeMillis
          const jitter = yield* Random.next
          const state = yield* SubscriptionRef.get(managed.state)
          const policy = managed.config.restart_policy
          const { decision, state: budget } = onFailure(policy, state.budget, now, jitter)
          const crashed = `process ${describeExit(end.exit)}`
          if (decision._tag === "GiveUp") {
            const reason = `${crashed}; ${decision.reason}`
            yield* transition(managed, "failed", reason, { budget, lastError: reason, pid: null, endpoint: null }, end.exit)
            return
          }
          yield* transition(
            managed,
            "starting",
            `${crashed}; restart ${decision.attempt} of ${policy.max_restarts} in ${decision.delayMs} ms`,
            { budget, lastError: crashed, pid: null, endpoint: null, nextAttemptAt: now + decision.delayMs, report: null },
            end.exit
          )
          yield* Effect.sleep(Duration.millis(decision.delayMs))
        }
      })

    const view = (managed: Managed): Effect.Effect<ComponentView> =>
      Effect.gen(function*() {
        const state = yield* SubscriptionRef.get(managed.state)
        const now = yield* Clock.currentTimeMillis
        const child = yield* Ref.get(managed.child)
        const recent = Option.isSome(child) ? yield* child.value.recentLines : []
        const usage = isSupervised(managed.config) ? budgetUsage(managed.config.restart_policy, state.budget, now) : { used: 0, left: 0 }
        return {
          id: managed.id,
          kind: managed.config.kind,
          phase: state.phase,
          pid: state.pid,
          endpoint: state.endpoint,
          restarts: usage,
          next_attempt_at: state.nextAttemptAt === null ? null : new Date(state.nextAttemptAt).toISOString(),
          last_readiness: state.lastReadiness,
          last_health: state.lastHealth,
          last_error: state.lastError,
          report: state.report,
          recent_log: recent,
          isolation: run.launcher.isolation
        }
      })

    const stopLocked = (managed: Managed, reason: string) =>
      Effect.gen(function*() {
        const fiber = yield* Ref.get(managed.lifecycle)
        if (Option.isNone(fiber)) return
        const state = yield* SubscriptionRef.get(managed.state)
        if (state.phase !== "failed") yield* transition(managed, "stopping", reason)
        yield* Fiber.interrupt(fiber.value)
        yield* Ref.set(managed.lifecycle, Option.none())
        const after = yield* SubscriptionRef.get(managed.state)
        if (after.phase !== "failed") {
          const how = after.lastStop === null
            ? "no process was running"
            : `${after.lastStop.how.replace("_", " ")}: the process ${describeExit(after.lastStop.exit)}` +
              (after.lastStop.survivors.length > 0 ? `, survivors ${after.lastStop.survivors.join(" ")}` : "")
          yield* transition(managed, "stopped", `${reason} (${how})`, { pid: null, endpoint: null, nextAttemptAt: null, report: null }, after.lastStop?.exit)
        }
      })

    const startLocked = (managed: Managed, reason: string) =>
      Effect.gen(function*() {
        if (!isSupervised(managed.config)) return
        const running = yield* Ref.get(managed.lifecycle)
        if (Option.isSome(running)) {
          const state = yield* SubscriptionRef.get(managed.state)
          if (state.phase !== "failed") return
          yield* Fiber.interrupt(running.value)
        }
        // An operator start forgets the spent budget: only it leaves `failed`.
        yield* SubscriptionRef.update(managed.state, (s) => ({ ...s, budget: initialRestartBudget, lastError: null }))
        const fiber = yield* Effect.forkIn(
          lifecycle(managed).pipe(Effect.annotateLogs({ component: managed.id, reason })),
          scope
        )
        yield* Ref.set(managed.lifecycle, Option.some(fiber))
      })

    const settled = (managed: Managed) =>
      managed.state.changes.pipe(
        Stream.filter((state) => state.phase === "ready" || state.phase === "degraded" || state.phase === "failed" || state.phase === "stopped"),
        Stream.take(1),
        Stream.runDrain
      )

    yield* Effect.addFinalizer(() =>
      Effect.forEach([...components.values()], (managed) => managed.commands.withPermits(1)(stopLocked(managed, "host stopping")), {
        concurrency: "unbounded",
        discard: true
      })
    )

    const command = (id: string, act: (managed: Managed) => Effect.Effect<void>) =>
      Effect.flatMap(lookup(id), (managed) => managed.commands.withPermits(1)(act(managed)).pipe(Effect.zipRight(view(managed))))

    const shape: SupervisorShape = {
      list: Effect.forEach([...components.values()], view),
      get: (id) => Effect.flatMap(lookup(id), view),
      start: (id) => command(id, (managed) => startLocked(managed, "operator start")),
      stop: (id) => command(id, (managed) => stopLocked(managed, "operator stop")),
      restart: (id) =>
        command(id, (managed) => Effect.zipRight(stopLocked(managed, "operator restart"), startLocked(managed, "operator restart"))),
      startAll: Effect.forEach(
        [...components.values()].filter((managed) => isSupervised(managed.config) && managed.config.enabled),
        (managed) =>
          managed.commands.withPermits(1)(startLocked(managed, "host start")).pipe(
            Effect.zipRight(
              settled(managed).pipe(
                Effect.timeout(Duration.millis((managed.config.http ?? defaultHttpConfig).startup_timeout_ms + 5_000)),
                Effect.ignore
              )
            )
          ),
        { concurrency: "unbounded", discard: true }
      ),
      route: (id) =>
        Effect.flatMap(lookup(id), (managed) =>
          Effect.map(SubscriptionRef.get(managed.state), (state) => ({ phase: state.phase, endpoint: state.endpoint, token: state.token }))),
      invocationTimedOut: (id) => Effect.flatMap(lookup(id), (managed) => health.unhealthy(managed, "invocation timed out", null)).pipe(Effect.ignore),
      events: Stream.fromPubSub(events),
      subscribe: Stream.fromPubSub(events, { scoped: true })
    }
    return shape
  })

/** The host's supervisor: its components from the effective config, its lifecycle events to the trace. */
export const SupervisorLive: Layer.Layer<
  Supervisor,
  never,
  EffectiveConfig | HostPaths | TraceLog | ProcessLauncher | ModuleClient | LoopbackPorts
> = Layer.scoped(
  Supervisor,
  Effect.gen(function*() {
    const traces = yield* TraceLog
    return yield* makeSupervisor({ config: yield* EffectiveConfig, dataDir: (yield* HostPaths).dataDir, traceLifecycle: traces.lifecycle })
  })
)
