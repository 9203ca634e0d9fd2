/**
 * One run of a supervised component: a port, the launch (clean environment, sandbox, rotated log),
 * readiness, `middleware-init`, `ready`, then health checks until the process exits. The run's scope
 * owns the process: leaving it stops the whole group (TERM → grace → KILL).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Clock, Effect, Option, Ref, SubscriptionRef } from "effect"
import type { HostConfig } from "../../../services/host/HostConfig.js"
import type { ModuleClientShape } from "../../../services/host/ModuleClient.js"
import type { ExitInfo, LaunchSpec, ProcessLauncherShape } from "../../../services/host/ProcessLauncher.js"
import { ComponentFailure } from "../../../services/host/Supervisor.js"
import type { LoopbackPortsShape } from "../../../services/system/LoopbackPorts.js"
import { substitutePlaceholders } from "../../../services/system/Placeholders.js"
import { markUp } from "../../../services/policies/RestartBudget.js"
import type { Managed } from "./ComponentState.js"
import type { HealthWatch } from "./HealthWatch.js"
import { awaitReady, initialize } from "./ModuleHandshake.js"
import type { Transitions } from "./Transitions.js"

/** How one run of a component ended: its process exited after being ready, or the run failed. */
export type RunEnd =
  | { readonly _tag: "Crashed"; readonly exit: ExitInfo }
  | { readonly _tag: "Fatal"; readonly failure: ComponentFailure }

/** What a run needs from the supervisor. */
export interface RunContext {
  readonly config: HostConfig
  readonly dataDir: string
  readonly launcher: ProcessLauncherShape
  readonly client: ModuleClientShape
  readonly ports: LoopbackPortsShape
  readonly transitions: Transitions
  readonly health: HealthWatch
}

/** A restricted module's private working directory under the data dir (0700), never in /tmp. */
const privateWorkDir = (dataDir: string, id: string) =>
  Effect.sync(() => {
    const dir = Path.join(dataDir, "work", id)
    Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    Fs.chmodSync(dir, 0o700)
    return dir
  })

const fatal = (managed: Managed, reason: ComponentFailure["reason"], detail: string): RunEnd => ({
  _tag: "Fatal",
  failure: new ComponentFailure({ component: managed.id, reason, detail })
})

/** Runs `managed` once; returns when its process exits or the run fails. */
export const runComponentOnce = (context: RunContext, managed: Managed): Effect.Effect<RunEnd> =>
  Effect.scoped(
    Effect.gen(function*() {
      const component = managed.config
      const http = component.http
      const launch = component.launch
      if (launch === undefined || http === undefined) return fatal(managed, "LaunchFailed", "http_local_json needs launch and http")
      const portResult = http.port === "auto" || (http.port === undefined && http.endpoint === undefined)
        ? yield* Effect.either(context.ports.allocate)
        : { _tag: "Right" as const, right: http.port ?? Number(new URL(http.endpoint ?? "http://127.0.0.1:0").port) }
      if (portResult._tag === "Left") return fatal(managed, "LaunchFailed", `no free port: ${portResult.left.message}`)
      const port = portResult.right
      const endpoint = http.endpoint ?? `http://127.0.0.1:${port}`
      const values = { port: String(port), data_dir: context.dataDir, component_id: managed.id }
      const cwd = launch.cwd !== undefined
        ? substitutePlaceholders(launch.cwd, values)
        : component.sandbox_profile === "module-restricted"
        ? yield* privateWorkDir(context.dataDir, managed.id)
        : undefined
      const spec: LaunchSpec = {
        name: managed.id,
        executable: substitutePlaceholders(launch.executable, values),
        args: launch.args.map((arg) => substitutePlaceholders(arg, values)),
        ...(cwd === undefined ? {} : { cwd }),
        env: {
          ...Object.fromEntries(Object.entries(launch.env).map(([k, v]) => [k, substitutePlaceholders(v, values)])),
          CORRAL_MODULE_ID: component.module_id ?? managed.id,
          CORRAL_COMPONENT_ID: managed.id,
          CORRAL_MODULE_PORT: String(port),
          CORRAL_DATA_DIR: context.dataDir
        },
        sandbox: component.sandbox_profile,
        logFile: Path.join(context.dataDir, "logs", `${managed.id}.log`),
        rotation: { maxBytes: context.config.host.logs.max_bytes, keep: context.config.host.logs.keep }
      }
      const launched = yield* Effect.either(context.launcher.launch(spec, component.stop_timeout_ms))
      if (launched._tag === "Left") return fatal(managed, "LaunchFailed", launched.left.message)
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
      const ready = yield* Effect.either(awaitReady(context.client, context.transitions, managed, http, endpoint, child))
      if (ready._tag === "Left") return { _tag: "Fatal", failure: ready.left } as const
      const moduleConfig = context.config.modules[component.module_id ?? managed.id] ?? {}
      const report = yield* Effect.either(initialize(context.client, managed, http, endpoint, moduleConfig))
      if (report._tag === "Left") return { _tag: "Fatal", failure: report.left } as const
      const now = yield* Clock.currentTimeMillis
      const state = yield* SubscriptionRef.get(managed.state)
      yield* context.transitions.transition(managed, "ready", `ready on ${endpoint}, module ${report.right.name}`, {
        report: report.right,
        unhealthyStreak: 0,
        lastError: null,
        budget: markUp(state.budget, now)
      })
      const exit = yield* Effect.raceFirst(child.exit, Effect.zipRight(context.health.watch(managed, http, endpoint), Effect.never))
      return { _tag: "Crashed", exit } as const
    })
  )
