/**
 * The control server: a fresh token in `run/control.token` (0600), the control API served on loopback by
 * a bounded server, then `run/control.json` (URL, pid) once it listens. Both files go when it stops.
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { Deferred, Effect, Layer } from "effect"
import { Broker } from "../../services/broker/Broker.js"
import { ControlApi } from "../../services/host/ControlApi.js"
import { EffectiveConfig } from "../../services/host/EffectiveConfig.js"
import { HookRunner } from "../../services/host/HookRunner.js"
import { HostPaths } from "../../services/host/HostPaths.js"
import { Supervisor } from "../../services/host/Supervisor.js"
import type { BoundedServerConfigError, BoundedServerShape, ServeError } from "../../services/server/BoundedServer.js"
import { serveHandler } from "../server/BoundedServer.js"
import { makeResourcePressureMonitor } from "../system/ResourcePressure.js"
import { controlApi, controlRouteOf } from "./ControlApi.js"

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

/** The host's control server, with its token and `control.json` for the life of the layer. */
export const ControlApiLive: Layer.Layer<
  ControlApi,
  ServeError | BoundedServerConfigError,
  EffectiveConfig | HostPaths | Supervisor | HookRunner | Broker
> = Layer.scoped(
  ControlApi,
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    const paths = yield* HostPaths
    const broker = yield* Broker
    const token = randomBytes(32).toString("hex")
    yield* writePrivate(paths.controlToken, `${token}\n`, 0o600)
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(paths.controlToken, { force: true })))
    const started = yield* Deferred.make<BoundedServerShape>()
    const control = config.host.control
    const retryAfterSeconds = 1
    const server = yield* serveHandler(
      {
        name: "control",
        host: control.host,
        port: control.port,
        maxConnections: control.max_connections,
        handlerTimeoutMs: control.handler_timeout_ms,
        retryAfterSeconds
      },
      controlApi({
        token,
        supervisor: yield* Supervisor,
        hooks: yield* HookRunner,
        server: Deferred.await(started),
        broker: broker.snapshot,
        pressure: yield* makeResourcePressureMonitor,
        // Fewer than the server's permits, so operator routes always have some of their own.
        hookPermits: yield* Effect.makeSemaphore(hookInvocationPermits(control)),
        retryAfterSeconds
      }),
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
