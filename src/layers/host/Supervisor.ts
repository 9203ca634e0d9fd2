/**
 * The supervisor of `http_local_json` components. Each component has one lifecycle fiber at most;
 * operator commands on a component are serialized by its own semaphore; its state lives in a
 * `SubscriptionRef`; every phase change is an event on a `PubSub` and a lifecycle trace line.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Clock, Duration, Effect, ExecutionStrategy, Fiber, Layer, Option, PubSub, Random, Ref, Schedule, Schema, Scope, Stream, SubscriptionRef } from "effect"
import type { ComponentView, Phase } from "../../services/host/Component.js"
import type { ComponentConfig, HostConfig } from "../../services/host/HostConfig.js"
import {
  makeMiddlewareInit,
  ModuleReport,
  reportIncompatibility
} from "../../services/host/MiddlewareContract.js"
import { ModuleClient } from "../../services/host/ModuleClient.js"
import { type ChildHandle, describeExit, type ExitInfo, ProcessLauncher, type StopOutcome } from "../../services/host/ProcessLauncher.js"
import { type LifecycleEvent, Supervisor, type SupervisorShape, UnknownComponent } from "../../services/host/Supervisor.js"
import { substitutePlaceholders } from "../../services/system/Placeholders.js"
import { budgetUsage, initialRestartBudget, markUp, onFailure, type RestartBudgetState } from "../../services/policies/RestartBudget.js"
import { LoopbackPorts } from "../../services/system/LoopbackPorts.js"

/** Where the supervisor keeps its files, and where lifecycle events go besides the PubSub. */
export interface SupervisorOptions {
  readonly config: HostConfig
  readonly dataDir: string
  /** Appends one lifecycle event to `trace/lifecycle.jsonl`. */
  readonly traceLifecycle: (event: LifecycleEvent) => Effect.Effect<void>
}

interface Probe {
  readonly at: string
  readonly ok: boolean
  readonly detail: string
}

interface ComponentState {
  readonly phase: Phase
  readonly pid: number | null
  readonly endpoint: string | null
  readonly budget: RestartBudgetState
  readonly nextAttemptAt: number | null
  readonly lastReadiness: Probe | null
  readonly lastHealth: Probe | null
  readonly lastError: string | null
  readonly report: ModuleReport | null
  readonly unhealthyStreak: number
  /** How the last stop of the process went, for the `stopped` event. */
  readonly lastStop: StopOutcome | null
}

interface Managed {
  readonly id: string
  readonly config: ComponentConfig
  readonly state: SubscriptionRef.SubscriptionRef<ComponentState>
  readonly lifecycle: Ref.Ref<Option.Option<Fiber.RuntimeFiber<void>>>
  readonly child: Ref.Ref<Option.Option<ChildHandle>>
  readonly commands: Effect.Semaphore
}

/** How one run of a component ended. */
type RunEnd =
  | { readonly _tag: "Crashed"; readonly exit: ExitInfo }
  | { readonly _tag: "Fatal"; readonly reason: string; readonly exit?: ExitInfo }

const supervised = (component: ComponentConfig): boolean => component.kind === "http_local_json"

const initialState = (component: ComponentConfig): ComponentState => ({
  phase: supervised(component) ? "configured" : "ready",
  pid: null,
  endpoint: component.kind === "local_http_json" ? component.http?.endpoint ?? null : null,
  budget: initialRestartBudget,
  nextAttemptAt: null,
  lastReadiness: null,
  lastHealth: null,
  lastError: null,
  report: null,
  unhealthyStreak: 0,
  lastStop: null
})

const privateWorkDir = (dataDir: string, id: string) =>
  Effect.sync(() => {
    const dir = Path.join(dataDir, "work", id)
    Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    Fs.chmodSync(dir, 0o700)
    return dir
  })

/** Builds the supervisor; its scope's end stops every component (TERM → grace → KILL). */
export const makeSupervisor = (
  options: SupervisorOptions
): Effect.Effect<SupervisorShape, never, ProcessLauncher | ModuleClient | LoopbackPorts | Scope.Scope> =>
  Effect.gen(function*() {
    const launcher = yield* ProcessLauncher
    const client = yield* ModuleClient
    const ports = yield* LoopbackPorts
    const events = yield* PubSub.sliding<LifecycleEvent>(1_024)
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

    const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

    /** Moves a component to `to`, publishing the event (also when the phase stays, if the reason is news). */
    const transition = (
      managed: Managed,
      to: Phase,
      reason: string,
      patch: Partial<ComponentState> = {},
      exit?: ExitInfo
    ) =>
      Effect.gen(function*() {
        const at = yield* isoNow
        const before = yield* SubscriptionRef.get(managed.state)
        const after = { ...before, ...patch, phase: to }
        yield* SubscriptionRef.set(managed.state, after)
        const event: LifecycleEvent = {
          at,
          component: managed.id,
          from: before.phase,
          to,
          reason,
          pid: after.pid,
          ...(exit === undefined ? {} : { exit: { code: exit.code, signal: exit.signal } })
        }
        yield* PubSub.publish(events, event)
        yield* options.traceLifecycle(event)
        yield* Effect.logInfo(`${managed.id}: ${before.phase} → ${to}: ${reason}`).pipe(
          Effect.annotateLogs({ component: managed.id, phase: to })
        )
      })

    const probe = (ok: boolean, detail: string) => Effect.map(isoNow, (at): Probe => ({ at, ok, detail }))

    /** Polls the ready path until 200, within `startup_timeout_ms`, giving up early if the child exits. */
    const awaitReady = (managed: Managed, endpoint: string, child: ChildHandle) => {
      const http = managed.config.http
      const startupMs = http?.startup_timeout_ms ?? 15_000
      const readyPath = http?.ready_path ?? "/readyz"
      // Probing is cheap (a refused loopback connect), and its interval adds to every (re)start.
      const pollMs = Math.max(1, Math.min(15, Math.floor(startupMs / 50)))
      const once = client.get(endpoint, readyPath, { timeoutMs: Math.min(1_000, startupMs), maxResponseBytes: 65_536 }).pipe(
        Effect.flatMap((reply) =>
          reply.status === 200 ? Effect.succeed(reply) : Effect.fail(`ready path answered ${reply.status}`)
        ),
        Effect.mapError((error) => typeof error === "string" ? error : error.message),
        Effect.tapBoth({
          onFailure: (detail) => Effect.flatMap(probe(false, detail), (p) => SubscriptionRef.update(managed.state, (s) => ({ ...s, lastReadiness: p }))),
          onSuccess: () => Effect.flatMap(probe(true, "200"), (p) => SubscriptionRef.update(managed.state, (s) => ({ ...s, lastReadiness: p })))
        })
      )
      const polled = once.pipe(Effect.retry(Schedule.spaced(Duration.millis(pollMs))), Effect.asVoid)
      return Effect.raceFirst(
        polled.pipe(
          Effect.timeoutFail({
            duration: Duration.millis(startupMs),
            onTimeout: () => `not ready within startup_timeout_ms (${startupMs} ms)`
          })
        ),
        Effect.flatMap(child.exit, (exit) => Effect.fail(`the process ${describeExit(exit)} before it was ready`))
      )
    }

    /** `middleware-init`, then the module report, validated and checked for compatibility. */
    const initialize = (managed: Managed, endpoint: string) => {
      const http = managed.config.http
      const moduleId = managed.config.module_id ?? managed.id
      const init = makeMiddlewareInit(managed.id, moduleId, options.config.modules[moduleId] ?? {})
      return client.postJson(endpoint, http?.init_path ?? "/v1/middleware/init", init, {
        timeoutMs: http?.request_timeout_ms ?? 5_000,
        maxResponseBytes: http?.max_response_bytes ?? 65_536
      }).pipe(
        Effect.mapError((error) => `middleware-init failed: ${error.message}`),
        Effect.flatMap((reply) =>
          Schema.decodeUnknown(ModuleReport)(reply.body).pipe(
            Effect.mapError((error) => `module report is invalid: ${error.message}`)
          )
        ),
        Effect.flatMap((report) => {
          const incompatible = reportIncompatibility(report)
          return incompatible === undefined ? Effect.succeed(report) : Effect.fail(`incompatible module: ${incompatible}`)
        })
      )
    }

    /** Health checks on a schedule: `unhealthy_threshold` failures in a row → degraded, a success → ready. */
    const healthLoop = (managed: Managed, endpoint: string) => {
      const http = managed.config.http
      const check = client.get(endpoint, http?.health_path ?? "/healthz", {
        timeoutMs: Math.min(http?.request_timeout_ms ?? 5_000, http?.health_interval_ms ?? 5_000),
        maxResponseBytes: 65_536
      }).pipe(
        Effect.map((reply) => reply.status === 200 ? { ok: true, detail: "200" } : { ok: false, detail: `health path answered ${reply.status}` }),
        Effect.catchAll((error) => Effect.succeed({ ok: false, detail: error.message })),
        Effect.flatMap(({ ok, detail }) =>
          Effect.flatMap(probe(ok, detail), (p) => ok ? healthy(managed, p) : unhealthy(managed, detail, p))
        )
      )
      return check.pipe(Effect.repeat(Schedule.spaced(Duration.millis(http?.health_interval_ms ?? 5_000))), Effect.asVoid)
    }

    const healthy = (managed: Managed, p: Probe | null) =>
      Effect.flatMap(SubscriptionRef.get(managed.state), (state) =>
        state.phase === "degraded"
          ? transition(managed, "ready", "health recovered", { unhealthyStreak: 0, ...(p === null ? {} : { lastHealth: p }) })
          : SubscriptionRef.set(managed.state, { ...state, unhealthyStreak: 0, ...(p === null ? {} : { lastHealth: p }) }))

    const unhealthy = (managed: Managed, detail: string, p: Probe | null) =>
      Effect.flatMap(SubscriptionRef.get(managed.state), (state) => {
        const streak = state.unhealthyStreak + 1
        const threshold = managed.config.http?.unhealthy_threshold ?? 3
        const patch = { unhealthyStreak: streak, ...(p === null ? {} : { lastHealth: p }) }
        return state.phase === "ready" && streak >= threshold
          ? transition(managed, "degraded", `${streak} failures in a row: ${detail}`, patch)
          : SubscriptionRef.set(managed.state, { ...state, ...patch })
      })

    /** One run: launch, readiness, init, ready; returns when the child exits or a fatal problem occurs. */
    const runOnce = (managed: Managed): Effect.Effect<RunEnd> =>
      Effect.scoped(
        Effect.gen(function*() {
          const component = managed.config
          const http = component.http
          const launch = component.launch
          if (launch === undefined || http === undefined) {
            return { _tag: "Fatal", reason: "http_local_json needs launch and http" } as const
          }
          const portResult = http.port === "auto" || (http.port === undefined && http.endpoint === undefined)
            ? yield* Effect.either(ports.allocate)
            : { _tag: "Right" as const, right: http.port ?? Number(new URL(http.endpoint ?? "http://127.0.0.1:0").port) }
          if (portResult._tag === "Left") return { _tag: "Fatal", reason: `no free port: ${portResult.left.message}` } as const
          const port = portResult.right
          const endpoint = http.endpoint ?? `http://127.0.0.1:${port}`
          const values = { port: String(port), data_dir: options.dataDir, component_id: managed.id }
          const moduleId = component.module_id ?? managed.id
          // A restricted module's private working directory lives under the data dir (0700), not in
          // /tmp, so even a SIGKILLed host leaves nothing behind outside its own directory.
          const cwd = launch.cwd !== undefined
            ? substitutePlaceholders(launch.cwd, values)
            : component.sandbox_profile === "module-restricted"
            ? yield* privateWorkDir(options.dataDir, managed.id)
            : undefined
          const spec = {
            name: managed.id,
            executable: substitutePlaceholders(launch.executable, values),
            args: launch.args.map((arg) => substitutePlaceholders(arg, values)),
            ...(cwd === undefined ? {} : { cwd }),
            env: {
              ...Object.fromEntries(Object.entries(launch.env).map(([k, v]) => [k, substitutePlaceholders(v, values)])),
              CORRAL_MODULE_ID: moduleId,
              CORRAL_COMPONENT_ID: managed.id,
              CORRAL_MODULE_PORT: String(port),
              CORRAL_DATA_DIR: options.dataDir
            },
            sandbox: component.sandbox_profile,
            logFile: Path.join(options.dataDir, "logs", `${managed.id}.log`),
            rotation: { maxBytes: options.config.host.logs.max_bytes, keep: options.config.host.logs.keep }
          }
          const launched = yield* Effect.either(launcher.launch(spec, component.stop_timeout_ms))
          if (launched._tag === "Left") return { _tag: "Fatal", reason: launched.left.message } as const
          const child = launched.right
          yield* Ref.set(managed.child, Option.some(child))
          yield* SubscriptionRef.update(managed.state, (s) => ({ ...s, pid: child.pid, endpoint, nextAttemptAt: null }))
          yield* Effect.addFinalizer(() =>
            Effect.flatMap(child.stop(component.stop_timeout_ms), (outcome) =>
              SubscriptionRef.update(managed.state, (s) => ({
                ...s,
                pid: null,
                lastStop: outcome,
                lastError: outcome.survivors.length > 0
                  ? `stop left processes ${outcome.survivors.join(", ")} of the group running`
                  : s.lastError
              })))
          )
          const ready = yield* Effect.either(awaitReady(managed, endpoint, child))
          if (ready._tag === "Left") return { _tag: "Fatal", reason: ready.left } as const
          const report = yield* Effect.either(initialize(managed, endpoint))
          if (report._tag === "Left") return { _tag: "Fatal", reason: report.left } as const
          const now = yield* Clock.currentTimeMillis
          const state = yield* SubscriptionRef.get(managed.state)
          yield* transition(managed, "ready", `ready on ${endpoint}, module ${report.right.name}`, {
            report: report.right,
            unhealthyStreak: 0,
            lastError: null,
            budget: markUp(state.budget, now)
          })
          const exit = yield* Effect.raceFirst(child.exit, Effect.zipRight(healthLoop(managed, endpoint), Effect.never))
          return { _tag: "Crashed", exit } as const
        })
      )

    /** Runs, restarts under the budget, and ends in `failed` when it is spent or a failure is fatal. */
    const lifecycle = (managed: Managed): Effect.Effect<void> =>
      Effect.gen(function*() {
        yield* transition(managed, "starting", "start requested", { lastError: null, report: null, lastStop: null })
        while (true) {
          const end = yield* runOnce(managed)
          yield* Ref.set(managed.child, Option.none())
          if (end._tag === "Fatal") {
            yield* transition(managed, "failed", end.reason, { lastError: end.reason, pid: null, endpoint: null })
            return
          }
          const now = yield* Clock.currentTimeMillis
          const jitter = yield* Random.next
          const state = yield* SubscriptionRef.get(managed.state)
          const policy = managed.config.restart_policy
          const { decision, state: budget } = onFailure(policy, state.budget, now, jitter)
          const crashed = `process ${describeExit(end.exit)}`
          if (decision._tag === "GiveUp") {
            yield* transition(managed, "failed", `${crashed}; ${decision.reason}`, {
              budget,
              lastError: `${crashed}; ${decision.reason}`,
              pid: null,
              endpoint: null
            }, end.exit)
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
        const usage = supervised(managed.config) ? budgetUsage(managed.config.restart_policy, state.budget, now) : { used: 0, left: 0 }
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
          recent_log: recent
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
        if (!supervised(managed.config)) return
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

    const shape: SupervisorShape = {
      list: Effect.forEach([...components.values()], view),
      get: (id) => Effect.flatMap(lookup(id), view),
      start: (id) =>
        Effect.flatMap(lookup(id), (managed) =>
          managed.commands.withPermits(1)(startLocked(managed, "operator start")).pipe(Effect.zipRight(view(managed)))),
      stop: (id) =>
        Effect.flatMap(lookup(id), (managed) =>
          managed.commands.withPermits(1)(stopLocked(managed, "operator stop")).pipe(Effect.zipRight(view(managed)))),
      restart: (id) =>
        Effect.flatMap(lookup(id), (managed) =>
          managed.commands.withPermits(1)(
            Effect.zipRight(stopLocked(managed, "operator restart"), startLocked(managed, "operator restart"))
          ).pipe(Effect.zipRight(view(managed)))),
      startAll: Effect.forEach(
        [...components.values()].filter((managed) => supervised(managed.config) && managed.config.enabled),
        (managed) =>
          managed.commands.withPermits(1)(startLocked(managed, "host start")).pipe(
            Effect.zipRight(
              settled(managed).pipe(
                Effect.timeout(Duration.millis((managed.config.http?.startup_timeout_ms ?? 15_000) + 5_000)),
                Effect.ignore
              )
            )
          ),
        { concurrency: "unbounded", discard: true }
      ),
      route: (id) =>
        Effect.flatMap(lookup(id), (managed) =>
          Effect.map(SubscriptionRef.get(managed.state), (state) => ({ phase: state.phase, endpoint: state.endpoint }))),
      invocationTimedOut: (id) =>
        Effect.flatMap(lookup(id), (managed) => unhealthy(managed, "invocation timed out", null)).pipe(Effect.ignore),
      events: Stream.fromPubSub(events)
    }
    return shape
  })

/** The supervisor as a layer, for a given config. */
export const layerSupervisor = (options: SupervisorOptions) => Layer.scoped(Supervisor, makeSupervisor(options))
