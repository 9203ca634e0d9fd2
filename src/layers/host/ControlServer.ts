/**
 * The control server: a fresh token in `run/control.token` (0600), the control API (declared in
 * `ControlApiSpec`, hook invocations on the fast path) served on loopback by one bounded server, then
 * `run/control.json` (URL, pid) once it listens. Both files go when it stops.
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { Deferred, Effect, Layer } from "effect"
import { Broker } from "../../services/broker/Broker.js"
import { ControlApi } from "../../services/host/ControlApi.js"
import { CurrentConfig, EffectiveConfig } from "../../services/host/EffectiveConfig.js"
import { HookRunner } from "../../services/host/HookRunner.js"
import { HostEvents } from "../../services/host/HostEvents.js"
import { HostMetrics } from "../../services/host/HostMetrics.js"
import { HostPaths } from "../../services/host/HostPaths.js"
import { HostReload } from "../../services/host/HostReload.js"
import { Supervisor } from "../../services/host/Supervisor.js"
import type { BoundedServerConfigError, BoundedServerShape, ServeError } from "../../services/server/BoundedServer.js"
import { serveHttpAppWithFastPath } from "../server/BoundedServer.js"
import { makeResourcePressureMonitor } from "../system/ResourcePressure.js"
import { makeControlApp } from "./control/ControlApp.js"
import { type ControlDependencies, defaultStreamTiming, type StreamTiming } from "./control/ControlDependencies.js"
import { makeSessionStore } from "./control/Sessions.js"
import { HookPermits } from "./control/HookPermits.js"
import { bundledAssetsDir } from "./control/StaticAssets.js"
import { StreamPermits } from "./control/StreamPermits.js"
import { controlRouteOf, hookInvocationRoute } from "./ControlApi.js"

/** Writes `file` with `mode` atomically (temp file + rename), so readers never see half of it. */
const writePrivate = (file: string, content: string, mode: number) =>
  Effect.sync(() => {
    const temp = `${file}.${process.pid}.tmp`
    Fs.writeFileSync(temp, content, { mode })
    Fs.renameSync(temp, file)
  })

/** Hook invocations run at once: `max_hook_invocations`, by default half of `max_connections`. */
export const hookInvocationPermits = (control: { readonly max_connections: number; readonly max_hook_invocations?: number | undefined }): number =>
  control.max_hook_invocations ?? Math.max(1, Math.floor(control.max_connections / 2))

/** Event streams and log follows open at once: a quarter of the connections, so they never crowd out operators. */
export const streamPermitCount = (control: { readonly max_connections: number }): number => Math.max(1, Math.floor(control.max_connections / 4))

/** What a test may shorten: the stream timing. */
export interface ControlServerOptions {
  readonly timing?: StreamTiming
}

/** The host's control server, with its token and `control.json` for the life of the layer. */
export const makeControlApiLive = (options: ControlServerOptions = {}): Layer.Layer<
  ControlApi,
  ServeError | BoundedServerConfigError,
  EffectiveConfig | CurrentConfig | HostPaths | Supervisor | HookRunner | Broker | HostEvents | HostReload | HostMetrics
> =>
  Layer.scoped(
    ControlApi,
    Effect.gen(function*() {
      const config = yield* EffectiveConfig
      const current = yield* CurrentConfig
      const paths = yield* HostPaths
      const broker = yield* Broker
      const token = randomBytes(32).toString("hex")
      yield* writePrivate(paths.controlToken, `${token}\n`, 0o600)
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(paths.controlToken, { force: true })))
      const started = yield* Deferred.make<BoundedServerShape>()
      const control = config.host.control
      const retryAfterSeconds = 1
      const deps: ControlDependencies = {
        credentials: { token, sessions: yield* makeSessionStore },
        supervisor: yield* Supervisor,
        hooks: yield* HookRunner,
        server: Deferred.await(started),
        broker: broker.snapshot,
        pressure: yield* makeResourcePressureMonitor,
        events: yield* HostEvents,
        metrics: (yield* HostMetrics).snapshot,
        reload: yield* HostReload,
        config: Effect.map(current.get, (snapshot) => snapshot.config),
        configSources: Effect.map(current.get, (snapshot) => snapshot.sources),
        logsDir: paths.logs,
        assetsDir: bundledAssetsDir,
        // Fewer than the server's permits, so operator routes always have some of their own.
        hookPermits: new HookPermits(hookInvocationPermits(control)),
        streamPermits: new StreamPermits(streamPermitCount(control)),
        retryAfterSeconds,
        timing: options.timing ?? defaultStreamTiming
      }
      const server = yield* serveHttpAppWithFastPath(
        {
          name: "control",
          host: control.host,
          port: control.port,
          maxConnections: control.max_connections,
          handlerTimeoutMs: control.handler_timeout_ms,
          retryAfterSeconds
        },
        yield* makeControlApp(deps),
        hookInvocationRoute(deps),
        { routeOf: controlRouteOf }
      )
      yield* Deferred.succeed(started, server)
      const url = server.address._tag === "Tcp" ? server.address.url : server.address.path
      yield* writePrivate(
        paths.controlJson,
        `${JSON.stringify({ url, pid: process.pid, started_at: new Date().toISOString(), data_dir: paths.dataDir }, null, 2)}\n`,
        0o600
      )
      // Registered last, so it runs first: clients stop finding the host before it drains.
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(paths.controlJson, { force: true })))
      return { url, tokenFile: paths.controlToken, server }
    })
  )

/** The host's control server with the default stream timing. */
export const ControlApiLive = makeControlApiLive()
