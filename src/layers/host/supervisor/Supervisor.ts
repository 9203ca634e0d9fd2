/**
 * The supervisor of `http_local_json` components. Each component has one lifecycle fiber at most;
 * operator commands on a component are serialized by its own semaphore; the component map is an
 * immutable map in a `Ref` that a reload replaces; starts follow `depends_on` in waves and stops go in
 * reverse; every phase change is an event on a `PubSub` and a lifecycle trace line.
 */
import { Duration, Effect, ExecutionStrategy, Fiber, Layer, Option, PubSub, Ref, Scope, Stream, SubscriptionRef } from "effect"
import { isRoutable } from "../../../services/host/Component.js"
import { startWaves } from "../../../services/host/DependencyOrder.js"
import { EffectiveConfig } from "../../../services/host/EffectiveConfig.js"
import { HostEvents } from "../../../services/host/HostEvents.js"
import { defaultHttpConfig, type HostConfig } from "../../../services/host/HostConfig.js"
import { HostPaths } from "../../../services/host/HostPaths.js"
import { ModuleClient } from "../../../services/host/ModuleClient.js"
import { describeExit, ProcessLauncher } from "../../../services/host/ProcessLauncher.js"
import { ImpossibleTransition, Supervisor, type SupervisorShape, UnknownComponent } from "../../../services/host/Supervisor.js"
import { type LifecycleEvent, TraceLog } from "../../../services/host/Traces.js"
import { LoopbackPorts } from "../../../services/system/LoopbackPorts.js"
import { initialRestartBudget } from "../../../services/policies/RestartBudget.js"
import { isSettled, isSupervised, makeManaged, type Managed, noProcess, whyNotCommandable } from "./ComponentState.js"
import type { RunContext } from "./ComponentRun.js"
import { componentView } from "./ComponentViews.js"
import { type HealthResult, makeHealthWatch } from "./HealthWatch.js"
import { lifecycle } from "./Lifecycle.js"
import { planReconcile } from "./ReconcilePlan.js"
import { makeTransitions } from "./Transitions.js"

/** What the supervisor supervises, where it keeps its files, and where lifecycle events go besides the PubSub. */
export interface SupervisorOptions {
  readonly config: HostConfig
  readonly dataDir: string
  /** Appends one lifecycle event to `trace/lifecycle.jsonl`. */
  readonly traceLifecycle: (event: LifecycleEvent) => Effect.Effect<void>
  /** Publishes each health check's result (the host's event feed); omitted: results only reach the view. */
  readonly publishHealth?: (result: HealthResult) => Effect.Effect<void>
}

/** How long a start waits for a component to settle: its start-up timeout plus room for `middleware-init`. */
const settleWithinMs = (managed: Managed) => (managed.config.http ?? defaultHttpConfig).startup_timeout_ms + 5_000

/** A component a start wave is to start, and its count of operator commands when the wave began. */
interface WaveEntry {
  readonly managed: Managed
  readonly issued: number
}

/** Runs `effect` holding the command permit of every one of `list` (a reload's stop and swap as one step). */
const withAllPermits = <A>(list: ReadonlyArray<Managed>, effect: Effect.Effect<A>): Effect.Effect<A> =>
  list.reduce((inner, managed) => managed.commands.withPermits(1)(inner), effect)

/** Builds the supervisor; its scope's end stops every component (dependents first; TERM → grace → KILL). */
export const makeSupervisor = (
  options: SupervisorOptions
): Effect.Effect<SupervisorShape, never, ProcessLauncher | ModuleClient | LoopbackPorts | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* ModuleClient
    const launcher = yield* ProcessLauncher
    const events = yield* PubSub.sliding<LifecycleEvent>(1_024)
    const transitions = makeTransitions(events, options.traceLifecycle)
    const health = makeHealthWatch(client, transitions, options.publishHealth ?? (() => Effect.void))
    const currentConfig = yield* Ref.make(options.config)
    const run: RunContext = {
      currentConfig: Ref.get(currentConfig),
      dataDir: options.dataDir,
      launcher,
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
    // Host start, reloads and nothing else change which components exist or start them in order.
    const topology = yield* Effect.makeSemaphore(1)

    const initial = yield* Effect.forEach(Object.entries(options.config.components), ([id, component]) =>
      Effect.map(makeManaged(id, component), (managed) => [id, managed] as const))
    const components = yield* Ref.make<ReadonlyMap<string, Managed>>(new Map(initial))

    const lookup = (id: string) =>
      Effect.flatMap(Ref.get(components), (map) => {
        const managed = map.get(id)
        return managed === undefined ? Effect.fail(new UnknownComponent({ component: id })) : Effect.succeed(managed)
      })
    const view = (managed: Managed) => componentView(managed, launcher.isolation)

    /** Waits (at most `timeoutMs`) until nothing is under way for `managed`. */
    const settle = (managed: Managed, timeoutMs: number) =>
      managed.state.changes.pipe(
        Stream.filter((state) => isSettled(state.phase)),
        Stream.runHead,
        Effect.timeout(Duration.millis(timeoutMs)),
        Effect.ignore
      )

    // Uninterruptible: cut off after `stopping` (a client gone mid-stop, a reload cut by the host's stop), it
    // left the component `stopping` for good. Bounded: the lifecycle's interruption only stops its run
    // (TERM, `stop_timeout_ms`, KILL, the KILL wait: `ProcessGroup`) and closes its socket.
    const stopLocked = (managed: Managed, reason: string) =>
      Effect.uninterruptible(Effect.gen(function*() {
        const fiber = yield* Ref.getAndSet(managed.lifecycle, Option.none())
        if (Option.isNone(fiber)) return
        const state = yield* SubscriptionRef.get(managed.state)
        // Ended on its own (a clean exit it stays stopped after, or `failed`): nothing runs, nothing to publish.
        if (state.phase === "stopped" || state.phase === "failed") return yield* Fiber.interrupt(fiber.value)
        yield* transition(managed, "stopping", reason)
        yield* Fiber.interrupt(fiber.value)
        const after = yield* SubscriptionRef.get(managed.state)
        const how = after.lastStop === null
          ? "no process was running"
          : `${after.lastStop.how.replace("_", " ")}: the process ${describeExit(after.lastStop.exit)}` +
            (after.lastStop.survivors.length > 0 ? `, survivors ${after.lastStop.survivors.join(" ")}` : "")
        yield* transition(managed, "stopped", `${reason} (${how})`, { ...noProcess, nextAttemptAt: null, report: null }, after.lastStop?.exit)
      }))

    /** An operator stop of a component never started (it waits in a start wave, or none ran yet): `stopped`, so no wave or reload starts it. */
    const stopUnstarted = (managed: Managed) =>
      transitions.update(managed, (state) =>
        state.phase === "configured"
          ? { patch: {}, to: { phase: "stopped", reason: "operator stop before it was started; it stays stopped until an operator starts it" } }
          : { patch: {} })

    const startLocked = (managed: Managed, reason: string) =>
      Effect.gen(function*() {
        if (!isSupervised(managed.config)) return
        const state = yield* SubscriptionRef.get(managed.state)
        if (state.phase !== "configured" && state.phase !== "stopped" && state.phase !== "failed") return
        const previous = yield* Ref.get(managed.lifecycle)
        if (Option.isSome(previous)) yield* Fiber.interrupt(previous.value)
        // `starting` before this returns, so a caller's `settled` never sees the phase from before the start.
        // An operator start forgets the spent budget: only it leaves `failed`.
        yield* transition(managed, "starting", reason, {
          budget: initialRestartBudget,
          lastError: null,
          report: null,
          lastStop: null,
          nextAttemptAt: null
        })
        const fiber = yield* Effect.forkIn(lifecycle(run, managed).pipe(Effect.annotateLogs({ component: managed.id, reason })), scope)
        yield* Ref.set(managed.lifecycle, Option.some(fiber))
      })

    /** Runs `act` under the permit unless a reload retired `managed` meanwhile (then: false). */
    const whileCurrent = (managed: Managed, act: Effect.Effect<void>) =>
      managed.commands.withPermits(1)(
        Effect.flatMap(Ref.get(managed.retired), (retired) => (retired ? Effect.succeed(false) : Effect.as(act, true)))
      )

    /**
     * Starts `managed` once its dependencies have settled and are ready (else fails it, naming them), then
     * waits for it to settle; does neither when an operator command acted on it since `issued` was read
     * (the wave began): a stop meanwhile stays a stop, a start or restart already did what it asked.
     */
    const startAfterDependencies = (managed: Managed, issued: number, reason: string) =>
      Effect.gen(function*() {
        const map = yield* Ref.get(components)
        const dependencies = managed.config.depends_on.flatMap((id) => map.get(id) ?? [])
        yield* Effect.forEach(dependencies, (dependency) => settle(dependency, settleWithinMs(dependency)), {
          concurrency: "unbounded",
          discard: true
        })
        const blocked: Array<string> = []
        for (const dependency of dependencies) {
          const { phase } = yield* SubscriptionRef.get(dependency.state)
          if (!isRoutable(phase)) blocked.push(`"${dependency.id}" (${phase})`)
        }
        const unlessCommanded = (act: Effect.Effect<void>) =>
          whileCurrent(managed, Effect.flatMap(Ref.get(managed.commandsIssued), (now) => (now === issued ? act : Effect.void)))
        if (blocked.length === 0) {
          yield* unlessCommanded(startLocked(managed, reason))
          return yield* settle(managed, settleWithinMs(managed))
        }
        const why = blocked.length === 1
          ? `not started: its dependency ${blocked.join("")} is not ready; start it first`
          : `not started: its dependencies ${blocked.join(" and ")} are not ready; start them first`
        yield* unlessCommanded(
          transitions.update(managed, (state) =>
            isSettled(state.phase) && !isRoutable(state.phase) ? { patch: { lastError: why }, to: { phase: "failed", reason: why } } : { patch: {} })
        )
      })

    /** Each of `list` with its count of operator commands now (a wave's starting point). */
    const waveEntries = (list: ReadonlyArray<Managed>) =>
      Effect.forEach(list, (managed) => Effect.map(Ref.get(managed.commandsIssued), (issued): WaveEntry => ({ managed, issued })))

    /** Starts `chosen` in `depends_on` waves: a wave starts once the one before has settled. */
    const startInWaves = (chosen: ReadonlyArray<WaveEntry>, reason: (id: string) => string) =>
      Effect.gen(function*() {
        for (const wave of startWaves(Object.fromEntries(chosen.map(({ managed }) => [managed.id, managed.config])))) {
          yield* Effect.forEach(
            chosen.filter(({ managed }) => wave.includes(managed.id)),
            ({ issued, managed }) => startAfterDependencies(managed, issued, reason(managed.id)),
            { concurrency: "unbounded", discard: true }
          )
        }
      })

    /** Stops `list` dependents first: waves of `depends_on`, last wave first, each wave at once. */
    const stopInReverseOrder = (list: ReadonlyArray<Managed>, stopOne: (managed: Managed) => Effect.Effect<unknown>) =>
      Effect.forEach(
        [...startWaves(Object.fromEntries(list.map((managed) => [managed.id, managed.config])))].reverse(),
        (wave) => Effect.forEach(list.filter((managed) => wave.includes(managed.id)), stopOne, { concurrency: "unbounded", discard: true }),
        { discard: true }
      )

    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Ref.get(components), (map) =>
        stopInReverseOrder([...map.values()], (managed) => managed.commands.withPermits(1)(stopLocked(managed, "host stopping"))))
    )

    const command = (
      id: string,
      action: ImpossibleTransition["action"],
      act: (managed: Managed) => Effect.Effect<void>
    ) => {
      const attempt = (retries: number): Effect.Effect<Managed, UnknownComponent | ImpossibleTransition> =>
        Effect.flatMap(lookup(id), (managed) => {
          const impossible = whyNotCommandable(managed.config)
          if (impossible !== undefined) return Effect.fail(new ImpossibleTransition({ component: id, action, reason: impossible }))
          // Retired by a reload while this waited: the id now names a new entry (or nothing).
          const counted = Effect.zipRight(Ref.update(managed.commandsIssued, (n) => n + 1), act(managed))
          return Effect.flatMap(whileCurrent(managed, counted), (done) =>
            done ? Effect.succeed(managed) : retries > 0 ? attempt(retries - 1) : Effect.fail(new UnknownComponent({ component: id })))
        })
      return Effect.flatMap(attempt(1), view)
    }

    const shape: SupervisorShape = {
      list: Effect.flatMap(Ref.get(components), (map) => Effect.forEach([...map.values()], view)),
      get: (id) => Effect.flatMap(lookup(id), view),
      start: (id) => command(id, "start", (managed) => startLocked(managed, "operator start")),
      stop: (id) => command(id, "stop", (managed) => Effect.zipRight(stopLocked(managed, "operator stop"), stopUnstarted(managed))),
      restart: (id) =>
        command(id, "restart", (managed) => Effect.zipRight(stopLocked(managed, "operator restart"), startLocked(managed, "operator restart"))),
      settled: (id, timeoutMs) => Effect.flatMap(lookup(id), (managed) => Effect.zipRight(settle(managed, timeoutMs), view(managed))),
      reconcile: (config) =>
        topology.withPermits(1)(Effect.gen(function*() {
          const plan = planReconcile(yield* Ref.get(currentConfig), config)
          const before = yield* Ref.get(components)
          const leaving = [...plan.removed, ...plan.changed].flatMap((id) => before.get(id) ?? [])
          // Stopped, retired and replaced while holding their permits: a command waiting on one of them
          // then finds the new entry rather than starting a retired one.
          const starting = yield* withAllPermits(leaving, Effect.gen(function*() {
            // A changed component an operator had stopped keeps its new config but stays stopped.
            const stopped = new Set<string>()
            for (const managed of leaving) {
              if ((yield* SubscriptionRef.get(managed.state)).phase === "stopped") stopped.add(managed.id)
            }
            yield* stopInReverseOrder(leaving, (managed) =>
              stopLocked(managed, plan.removed.includes(managed.id) ? "reload: removed from the config" : "reload: its config changed"))
            yield* Effect.forEach(leaving, (managed) => Ref.set(managed.retired, true), { discard: true })
            const next = new Map<string, Managed>()
            for (const [id, component] of Object.entries(config.components)) {
              const kept = before.get(id)
              next.set(
                id,
                kept !== undefined && plan.unchanged.includes(id)
                  ? kept
                  : yield* makeManaged(id, component, stopped.has(id) && isSupervised(component) ? "stopped" : undefined)
              )
            }
            // Counted before the new entries are visible, so an operator command on one right after is not lost to the wave.
            const entries = yield* waveEntries([...plan.added, ...plan.changed].flatMap((id) => {
              const managed = next.get(id)
              return managed !== undefined && isSupervised(managed.config) && managed.config.enabled && !stopped.has(id) ? [managed] : []
            }))
            yield* Ref.set(components, next)
            yield* Ref.set(currentConfig, config)
            return entries
          }))
          yield* startInWaves(starting, (id) => plan.added.includes(id) ? "reload: added to the config" : "reload: its config changed")
          return { added: plan.added, removed: plan.removed, restarted: plan.changed, unchanged: plan.unchanged }
        })),
      startAll: topology.withPermits(1)(
        Effect.flatMap(Ref.get(components), (map) =>
          Effect.flatMap(waveEntries([...map.values()].filter((managed) => isSupervised(managed.config) && managed.config.enabled)), (entries) =>
            startInWaves(entries, () => "host start")))
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

/** The host's supervisor: its components from the effective config, lifecycle events to the trace, health results to the event feed. */
export const SupervisorLive: Layer.Layer<
  Supervisor,
  never,
  EffectiveConfig | HostPaths | TraceLog | HostEvents | ProcessLauncher | ModuleClient | LoopbackPorts
> = Layer.scoped(
  Supervisor,
  Effect.gen(function*() {
    const traces = yield* TraceLog
    const hostEvents = yield* HostEvents
    return yield* makeSupervisor({
      config: yield* EffectiveConfig,
      dataDir: (yield* HostPaths).dataDir,
      traceLifecycle: traces.lifecycle,
      publishHealth: (result) => hostEvents.publish({ _tag: "health", ...result })
    })
  })
)
