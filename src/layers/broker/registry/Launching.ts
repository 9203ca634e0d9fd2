/**
 * Launching one backend: an endpoint (a socket path in the 0700 backends dir, or a loopback port),
 * the command line with its placeholders filled in, the process, and the wait until its endpoint
 * accepts a connection. On any failure or interruption nothing is left running. A `module-restricted`
 * backend of a root host runs as its own user (`run_as`, default the module user), like a restricted
 * module; its socket then lives in a 0700 directory of its own under the backends dir.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Clock, Deferred, Effect, Either, Exit, Ref, Scope } from "effect"
import { type BackendError, launchFailed } from "../../../services/broker/BackendRegistry.js"
import type { Endpoint } from "../../../services/broker/BrokerProtocol.js"
import type { ServiceDefinition } from "../../../services/broker/ServiceDefinition.js"
import {
  type ChildHandle,
  defaultModuleUser,
  describeExit,
  type ExitInfo,
  type LaunchSpec,
  type ProcessLauncherShape
} from "../../../services/host/ProcessLauncher.js"
import type { LoopbackPortsShape } from "../../../services/system/LoopbackPorts.js"
import { errorText } from "../../../services/system/ErrorDetails.js"
import { substitutePlaceholders } from "../../../services/system/Placeholders.js"
import { privateDirectorySync } from "../../system/PrivateDirectory.js"
import { awaitAccepting, type EndpointProbe, endpointText } from "./EndpointProbe.js"
import type { Backend, PendingLaunch } from "./RegistryState.js"

/** What one launch of a key needs, resolved from the definition at acquire time. */
export interface LaunchPlan {
  readonly key: string
  readonly service: string
  readonly version: string
  readonly executable: string
  readonly definition: ServiceDefinition
}

/** What launches share: the launcher, the port allocator, where sockets and logs go, how probes and stops go. */
export interface LaunchContext {
  readonly launcher: ProcessLauncherShape
  readonly ports: LoopbackPortsShape
  /** Unix backend sockets go here (mode 0700). */
  readonly backendsDir: string
  /** Backend output goes to `<logsDir>/backend-<service>.log`. */
  readonly logsDir: string
  /** TERM → KILL grace of a stop. */
  readonly stopTimeoutMs: number
  readonly probe: EndpointProbe
}

/** Longest unix socket path Linux accepts (`sun_path` minus its terminating NUL). */
const maxSocketPathBytes = 107

/** The definition's `idle_exit_sec` in milliseconds. */
export const idleExitMsOf = (definition: ServiceDefinition): number | undefined =>
  definition.idle_exit_sec === undefined ? undefined : definition.idle_exit_sec * 1000

/**
 * Removes socket files and per-backend socket directories left by a broker that was killed (its
 * backends died with it through pdeathsig).
 */
export const removeLeftoverSockets = (backendsDir: string): Effect.Effect<void> =>
  Effect.sync(() => {
    try {
      for (const entry of Fs.readdirSync(backendsDir, { withFileTypes: true })) {
        if (entry.name.endsWith(".sock") || entry.isDirectory()) {
          Fs.rmSync(Path.join(backendsDir, entry.name), { recursive: true, force: true })
        }
      }
    } catch {
      // No backends dir yet: nothing left over.
    }
  })

/**
 * Where a unix backend listens: `path` (where the broker connects), `childPath` (the same socket as the
 * backend sees it) and, for a backend run as its own user, `ownDir` (its 0700 directory, handed to it).
 */
interface SocketPlace {
  readonly path: string
  readonly childPath: string
  readonly ownDir: string | undefined
}

/** What a launch of `plan` runs as: the user to switch to, and whether the launcher switches at all. */
const userOf = (context: LaunchContext, definition: ServiceDefinition) => {
  const runAs = definition.run_as ?? defaultModuleUser
  return { runAs, switches: context.launcher.switchesUser({ sandbox: definition.sandbox_profile, runAs }) }
}

/** The file name a backend run as its own user binds in its own directory. */
const ownSocketName = "backend.sock"

/**
 * The socket of a launch, named `<service>-<version>-<random>` (shortened to `<random>` if too long):
 * a `.sock` file in the backends dir, or, for a backend run as another user (who cannot enter the
 * host's run dir), a directory of that name holding `backend.sock`, which the launcher mounts at the
 * backend's own directory in its view.
 */
const socketPlaceFor = (context: LaunchContext, plan: LaunchPlan, random: string): Either.Either<SocketPlace, string> => {
  const { backendsDir } = context
  const { runAs, switches } = userOf(context, plan.definition)
  const fits = (base: string) => {
    const path = switches ? Path.join(backendsDir, base, ownSocketName) : Path.join(backendsDir, `${base}.sock`)
    return Buffer.byteLength(path) <= maxSocketPathBytes ? path : undefined
  }
  const path = fits(`${plan.service}-${plan.version}-${random}`) ?? fits(random)
  if (path === undefined) {
    return Either.left(`the backends dir ${backendsDir} is too long for a unix socket path (max ${maxSocketPathBytes} bytes)`)
  }
  if (!switches) return Either.right({ path, childPath: path, ownDir: undefined })
  const ownDir = Path.dirname(path)
  const seenAs = context.launcher.ownDirPath(ownDir, plan.definition.sandbox_profile)
  // Without a private mount the backend would need to search the host's 0700 run dir, which it cannot.
  return seenAs === ownDir
    ? Either.left(
      `backend ${plan.service} runs as user "${runAs}" (sandbox_profile ${plan.definition.sandbox_profile}), which cannot reach a socket under ` +
        `${backendsDir}, and this machine cannot mount its socket directory into its view (that needs PID namespaces, ` +
        `util-linux mount and /media); use endpoint.kind "tcp"`
    )
    : Either.right({ path, childPath: Path.join(seenAs, ownSocketName), ownDir })
}

/** Closes `scope` and removes the socket (file or own directory) once; later runs wait for the first. */
const stopOnce = (scope: Scope.CloseableScope, leftover: string | undefined): Effect.Effect<Effect.Effect<void>> =>
  Effect.map(Effect.all([Ref.make(false), Deferred.make<void>()]), ([started, done]) =>
    Effect.uninterruptible(
      Effect.flatMap(Ref.getAndSet(started, true), (already) =>
        already
          ? Deferred.await(done)
          : Scope.close(scope, Exit.void).pipe(
            Effect.zipRight(Effect.sync(() => {
              if (leftover !== undefined) Fs.rmSync(leftover, { recursive: true, force: true })
            })),
            Effect.ensuring(Deferred.succeed(done, undefined))
          ))
    ))

const recentOutput = (handle: ChildHandle) =>
  Effect.map(handle.recentLines, (lines) => {
    const tail = lines.slice(-5).join(" | ")
    return tail === "" ? "" : `; last output: ${tail}`
  })

/** Waits until `endpoint` accepts a connection, failing early if the process exits first. */
const awaitReady = (probe: EndpointProbe, plan: LaunchPlan, handle: ChildHandle, endpoint: Endpoint, timeoutMs: number) => {
  const died = Effect.flatMap(handle.exit, (info) =>
    Effect.flatMap(recentOutput(handle), (output) =>
      Effect.fail(launchFailed(
        plan.service,
        `backend ${plan.service} ${plan.version} (pid ${handle.pid}) ${describeExit(info)} before ` +
          `${endpointText(endpoint)} accepted a connection${output}`
      ))))
  return Effect.raceFirst(awaitAccepting(probe, endpoint), died).pipe(
    Effect.timeout(Math.max(0, timeoutMs)),
    Effect.catchTag("TimeoutException", () =>
      Effect.flatMap(recentOutput(handle), (output) =>
        Effect.fail(launchFailed(
          plan.service,
          `backend ${plan.service} ${plan.version} (pid ${handle.pid}) did not accept a connection on ` +
            `${endpointText(endpoint)} within ready_timeout_ms ${plan.definition.ready_timeout_ms}; it was stopped${output}`
        ))))
  )
}

/**
 * Prepares the endpoint of a launch: a fresh socket path in the backends dir (in a fresh 0700 directory
 * of its own for a backend run as another user; the launcher hands it over), or a free loopback port.
 */
const allocateEndpoint = (context: LaunchContext, service: string, socket: SocketPlace | undefined) =>
  socket !== undefined
    ? Effect.as(
      Effect.try({
        try: () => {
          privateDirectorySync(context.backendsDir)
          Fs.rmSync(socket.ownDir ?? socket.path, { recursive: true, force: true })
          if (socket.ownDir !== undefined) Fs.mkdirSync(socket.ownDir, { mode: 0o700 })
        },
        catch: (error) => launchFailed(service, `cannot prepare ${context.backendsDir}: ${errorText(error)}`)
      }),
      { kind: "unix", path: socket.path } satisfies Endpoint
    )
    : Effect.map(
      Effect.mapError(context.ports.allocate, (error) => launchFailed(service, `cannot allocate a loopback port: ${error.message}`)),
      (port): Endpoint => ({ kind: "tcp", host: "127.0.0.1", port })
    )

/**
 * The process of `plan` on `endpoint`: placeholders filled in with the endpoint as the backend sees it
 * (also in `CORRAL_BACKEND_ENDPOINT`); a backend run as another user works in its socket's own directory.
 */
const launchSpec = (context: LaunchContext, plan: LaunchPlan, endpoint: Endpoint, socket: SocketPlace | undefined): LaunchSpec => {
  const { definition, service, version } = plan
  const seen: Endpoint = socket === undefined ? endpoint : { kind: "unix", path: socket.childPath }
  const values = {
    version,
    endpoint: endpointText(seen),
    path: seen.kind === "unix" ? seen.path : "",
    port: seen.kind === "tcp" ? String(seen.port) : ""
  }
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(definition.launch.env)) env[name] = substitutePlaceholders(value, values)
  env.CORRAL_BACKEND_ENDPOINT = endpointText(seen)
  return {
    name: `backend ${service} ${version}`,
    executable: plan.executable,
    args: definition.launch.args.map((arg) => substitutePlaceholders(arg, values)),
    env,
    sandbox: definition.sandbox_profile,
    runAs: userOf(context, definition).runAs,
    ...(socket?.ownDir === undefined ? {} : { cwd: socket.ownDir, ownsCwd: true }),
    logFile: Path.join(context.logsDir, `backend-${service}.log`)
  }
}

/**
 * Starts the process of `launch` and waits for readiness within the definition's `ready_timeout_ms`.
 * `progress` records the endpoint, then the pid, as the launch gets them (for the snapshot).
 */
export const startBackend = (
  context: LaunchContext,
  plan: LaunchPlan,
  launch: PendingLaunch,
  progress: (patch: Partial<Pick<PendingLaunch, "pid" | "endpoint">>) => Effect.Effect<void>
): Effect.Effect<Backend, BackendError> =>
  Effect.gen(function*() {
    const { definition, service, version } = plan
    const startedAt = yield* Clock.currentTimeMillis
    const random = launch.instance.slice(launch.instance.lastIndexOf("-") + 1)
    const socket = definition.endpoint.kind === "unix"
      ? yield* Either.mapLeft(socketPlaceFor(context, plan, random), (reason) => launchFailed(service, reason))
      : undefined
    const scope = yield* Scope.make()
    const stop = yield* stopOnce(scope, socket?.ownDir ?? socket?.path)
    return yield* Effect.gen(function*() {
      const endpoint = yield* allocateEndpoint(context, service, socket)
      yield* progress({ endpoint })
      const handle = yield* context.launcher.launch(launchSpec(context, plan, endpoint, socket), context.stopTimeoutMs).pipe(
        Scope.extend(scope),
        Effect.mapError((error) => launchFailed(service, error.message))
      )
      yield* progress({ pid: handle.pid })
      const elapsed = (yield* Clock.currentTimeMillis) - startedAt
      yield* awaitReady(context.probe, plan, handle, endpoint, definition.ready_timeout_ms - elapsed)
      const exited = yield* Deferred.make<ExitInfo>()
      return {
        key: plan.key,
        service,
        version,
        instance: launch.instance,
        endpoint,
        pid: handle.pid,
        startedAt: launch.startedAt,
        handle,
        exited,
        stop
      } satisfies Backend
    }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : stop)))
  })
