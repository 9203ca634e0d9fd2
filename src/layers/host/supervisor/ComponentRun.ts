/**
 * One run of a supervised component: a port or socket, a fresh launch token, the launch (clean
 * environment plus `env_file`, sandbox, rotated log), readiness, `middleware-init`, `ready`, then health
 * checks until the process exits (or fails `restart_after_unhealthy` checks in a row). The run's scope owns
 * the process: leaving it stops the whole group (TERM → grace → KILL), then forgets the token. The socket
 * is the lifecycle's (`HeldListen`): bound by the first run, passed to every launch, kept across restarts.
 */
import { randomBytes } from "node:crypto"
import * as Path from "node:path"
import { Clock, Effect, Either, Option, Ref, Stream, SubscriptionRef } from "effect"
import type { HostConfig } from "../../../services/host/HostConfig.js"
import type { ModuleClientShape } from "../../../services/host/ModuleClient.js"
import { defaultModuleUser, type ExitInfo, type LaunchSpec, type ProcessLauncherShape } from "../../../services/host/ProcessLauncher.js"
import { ComponentFailure } from "../../../services/host/Supervisor.js"
import type { LoopbackPortsShape } from "../../../services/system/LoopbackPorts.js"
import { substitutePlaceholders } from "../../../services/system/Placeholders.js"
import { markUp } from "../../../services/policies/RestartBudget.js"
import { privateDirectory } from "../../system/PrivateDirectory.js"
import { readEnvFile } from "../launcher/EnvFile.js"
import { type Managed, noProcess } from "./ComponentState.js"
import type { HealthWatch } from "./HealthWatch.js"
import { awaitReady, initialize } from "./ModuleHandshake.js"
import { type ModuleListen, moduleListen, type SocketPlace } from "./ModuleListen.js"
import type { Transitions } from "./Transitions.js"

/**
 * How one run of a component ended: its process exited (before it was ready, or after), the host
 * stopped it after `restart_after_unhealthy` failed checks in a row, the run failed, or the host was
 * out of descriptors for its port or its spawn (transient: retried, never `failed`).
 */
export type RunEnd =
  // `at`: when the host saw the exit (Clock ms), the start of the restart backoff.
  | { readonly _tag: "Exited"; readonly exit: ExitInfo; readonly beforeReady: boolean; readonly at: number }
  | { readonly _tag: "Unhealthy"; readonly streak: number }
  | { readonly _tag: "Fatal"; readonly failure: ComponentFailure }
  | { readonly _tag: "OutOfDescriptors"; readonly detail: string }

/** What a run needs from the supervisor. */
export interface RunContext {
  /** The host's config now (a reload replaces it): for log rotation and the module's `modules` subtree. */
  readonly currentConfig: Effect.Effect<HostConfig>
  readonly dataDir: string
  readonly launcher: ProcessLauncherShape
  readonly client: ModuleClientShape
  readonly ports: LoopbackPortsShape
  readonly transitions: Transitions
  readonly health: HealthWatch
}

/**
 * A restricted module's private working directory under the data dir (0700), never in /tmp. `work/`
 * itself stays 0700 and the host's, so modules sharing one user cannot reach each other's directories.
 */
const privateWorkDir = (dataDir: string, id: string) =>
  Effect.flatMap(
    privateDirectory(Path.join(dataDir, "work")),
    // A module's own dir is handed to its user at launch, so a later run finds it owned by that user.
    (work) => privateDirectory(Path.join(work, id), { anyOwner: true })
  )

const fatal = (managed: Managed, reason: ComponentFailure["reason"], detail: string): RunEnd => ({
  _tag: "Fatal",
  failure: new ComponentFailure({ component: managed.id, reason, detail })
})

// EMFILE (this process) or ENFILE (the system), as the port probe or spawn reports it.
const outOfDescriptors = /\bE[MN]FILE\b/

/** A launch that failed: transient when the host was only out of descriptors, fatal otherwise. */
const launchFailed = (managed: Managed, detail: string): RunEnd =>
  outOfDescriptors.test(detail) ? { _tag: "OutOfDescriptors", detail } : fatal(managed, "LaunchFailed", detail)

/**
 * Where a component listens, bound by its first run and kept by its lifecycle for every later run, so
 * connections made during a restart wait in the socket's backlog (`HeldSocket`); released by the lifecycle.
 */
export type HeldListen = Ref.Ref<Option.Option<ModuleListen>>

/** Runs `managed` once (listening where `held` says, binding it on the first run); returns when its process exits or the run fails. */
export const runComponentOnce = (context: RunContext, managed: Managed, held: HeldListen): Effect.Effect<RunEnd> =>
  Effect.scoped(
    Effect.gen(function*() {
      const component = managed.config
      const http = component.http
      const launch = component.launch
      if (launch === undefined || http === undefined) return fatal(managed, "LaunchFailed", "http_local_json needs launch and http")
      const runAs = component.run_as ?? defaultModuleUser
      const switchesUser = context.launcher.switchesUser({ sandbox: component.sandbox_profile, runAs })
      const sandbox = component.sandbox_profile
      const ownWorkDir = launch.cwd === undefined && (sandbox === "module-restricted" || sandbox === "module-isolated")
        ? yield* Effect.either(privateWorkDir(context.dataDir, managed.id))
        : undefined
      if (ownWorkDir?._tag === "Left") return launchFailed(managed, `components.${managed.id}: ${ownWorkDir.left.message}`)
      const workDir = ownWorkDir?.right
      // Its own mount view (module-isolated) hides run/ whatever the user, as running as its own user does.
      const ownView = switchesUser || sandbox === "module-isolated"
      // A module run as its own user cannot reach run/: a unix socket goes in its own work dir (its cwd).
      const socketPlace: SocketPlace = !ownView
        ? { _tag: "HostDir" }
        : workDir !== undefined
        ? { _tag: "OwnDir", dir: workDir }
        : { _tag: "Unreachable", why: `it runs as user "${runAs}" with its own launch.cwd; drop launch.cwd` }
      const kept = yield* Ref.get(held)
      const listen = Option.isSome(kept)
        ? Either.right(kept.value)
        : yield* Effect.either(moduleListen(context.ports, context.dataDir, managed.id, http, launch, socketPlace))
      if (listen._tag === "Left") return launchFailed(managed, `components.${managed.id}: ${listen.left}`)
      if (Option.isNone(kept)) yield* Ref.set(held, Option.some(listen.right))
      const { endpoint } = listen.right
      // Fresh per launch, given only in the environment (never argv, never a placeholder, never logged).
      const token = randomBytes(32).toString("hex")
      // No `data_dir`: config loading already replaced `{data_dir}` in every string (ConfigPlaceholders).
      const values = { ...listen.right.placeholders, component_id: managed.id }
      const cwd = launch.cwd !== undefined ? substitutePlaceholders(launch.cwd, values) : workDir
      // Read at every launch, so a rotated secret reaches the next (re)start. Resolved like the executable:
      // against launch.cwd when given, else the host's working directory (never the private work dir).
      const envBase = launch.cwd === undefined ? process.cwd() : Path.resolve(substitutePlaceholders(launch.cwd, values))
      const fromFile = launch.env_file === undefined
        ? Either.right({})
        : yield* Effect.either(readEnvFile(Path.resolve(envBase, substitutePlaceholders(launch.env_file, values))))
      if (fromFile._tag === "Left") return launchFailed(managed, `components.${managed.id}: ${fromFile.left}`)
      const config = yield* context.currentConfig
      // A module run as its own user reaches nothing of the data dir; its data lives in its work dir, at
      // the path the launcher gives it there (its own directory bind-mounted at /media when it has a mount namespace).
      const dataDirOfModule = ownView && workDir !== undefined ? context.launcher.ownDirPath(workDir, sandbox) : context.dataDir
      const spec: LaunchSpec = {
        name: managed.id,
        executable: substitutePlaceholders(launch.executable, values),
        args: launch.args.map((arg) => substitutePlaceholders(arg, values)),
        ...(cwd === undefined ? {} : { cwd }),
        ...(launch.module_dir === undefined ? {} : { moduleDir: substitutePlaceholders(launch.module_dir, values) }),
        env: {
          ...fromFile.right,
          ...Object.fromEntries(Object.entries(launch.env).map(([k, v]) => [k, substitutePlaceholders(v, values)])),
          CORRAL_MODULE_ID: component.module_id ?? managed.id,
          CORRAL_COMPONENT_ID: managed.id,
          ...listen.right.env,
          CORRAL_MODULE_TOKEN: token,
          CORRAL_DATA_DIR: dataDirOfModule
        },
        sandbox,
        runAs,
        // The private work dir is the module's own: handed to its user when it runs as one.
        ownsCwd: launch.cwd === undefined,
        ...(listen.right.listenFd === undefined ? {} : { listenFd: listen.right.listenFd }),
        logFile: Path.join(context.dataDir, "logs", `${managed.id}.log`),
        rotation: { maxBytes: config.host.logs.max_bytes, keep: config.host.logs.keep }
      }
      const launched = yield* Effect.either(context.launcher.launch(spec, component.stop_timeout_ms))
      if (launched._tag === "Left") return launchFailed(managed, launched.left.message)
      const child = launched.right
      yield* Ref.set(managed.child, Option.some(child))
      const launchedAt = yield* Clock.currentTimeMillis
      yield* SubscriptionRef.update(managed.state, (s) => ({ ...s, pid: child.pid, startedAt: launchedAt, endpoint, token, nextAttemptAt: null }))
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(child.stop(component.stop_timeout_ms), (outcome) =>
          SubscriptionRef.update(managed.state, (s) => ({
            ...s,
            ...noProcess,
            token: null,
            lastStop: outcome,
            lastError: outcome.survivors.length > 0
              ? `stop left processes ${outcome.survivors.join(", ")} of the group running`
              : s.lastError
          })))
      )
      const ready = yield* Effect.either(awaitReady(context.client, context.transitions, managed, http, endpoint, child))
      if (ready._tag === "Left") {
        // An exit before ready is a start-up crash (the restart policy decides), not a contract failure.
        return ready.left.reason === "ExitedEarly"
          ? { _tag: "Exited", exit: yield* child.exit, beforeReady: true, at: yield* Clock.currentTimeMillis } as const
          : { _tag: "Fatal", failure: ready.left } as const
      }
      const moduleConfig = config.modules[component.module_id ?? managed.id] ?? {}
      const report = yield* Effect.either(initialize(context.client, managed, http, endpoint, token, moduleConfig))
      if (report._tag === "Left") return { _tag: "Fatal", failure: report.left } as const
      const now = yield* Clock.currentTimeMillis
      yield* context.transitions.update(managed, (state) => ({
        patch: { report: report.right, unhealthyStreak: 0, lastError: null, budget: markUp(state.budget, now) },
        to: { phase: "ready", reason: `ready on ${endpoint}, module ${report.right.name}` }
      }))
      const exited = Effect.flatMap(child.exit, (exit) =>
        Effect.map(Clock.currentTimeMillis, (at): RunEnd => ({ _tag: "Exited", exit, beforeReady: false, at })))
      const watched = Effect.zipRight(context.health.watch(managed, http, endpoint), Effect.never)
      const limit = component.restart_policy.restart_after_unhealthy
      // The streak counts health checks and invocation timeouts alike, whichever fiber records them.
      const unhealthy = limit === undefined ? Effect.never : managed.state.changes.pipe(
        Stream.filter((s) => s.unhealthyStreak >= limit),
        Stream.runHead,
        Effect.map((s): RunEnd => ({ _tag: "Unhealthy", streak: Option.match(s, { onNone: () => limit, onSome: (s) => s.unhealthyStreak }) }))
      )
      return yield* Effect.raceAll([exited, watched, unhealthy])
    })
  )
