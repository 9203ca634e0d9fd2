/**
 * `corral up`: builds the host (`HostLive`) on a data dir and keeps it up until SIGTERM/SIGINT drain it.
 * The CLI imports this module only for `up`, so client commands never load the host's layers.
 */
import { Effect, Layer } from "effect"
import { HostLive } from "../host/HostLive.js"
import type { HostPathsShape } from "../../services/host/HostPaths.js"
import { HostUp, printLifecycleEvent } from "./HostUp.js"
import { reportFailure, stderrLine } from "./Terminal.js"

/** Runs the host on `paths` until it is stopped; expected failures are one line and exit 1. */
export const runUp = (paths: HostPathsShape) => {
  const host = HostLive({
    dataDir: paths.dataDir,
    modulesDir: paths.modulesDir,
    onLifecycle: printLifecycleEvent,
    // `admin shutdown` on the broker stops the host the way SIGTERM does: one drain path.
    onShutdownRequest: Effect.sync(() => process.kill(process.pid, "SIGTERM"))
  })
  return Layer.launch(HostUp.pipe(Layer.provide(host))).pipe(
    Effect.catchTags({
      ConfigError: (error) => reportFailure(`corral: config error: ${error.message}; nothing was started`),
      HostAlreadyRunning: (error) => reportFailure(`corral: ${error.message}; nothing was started`),
      DataDirError: (error) => reportFailure(`corral: cannot prepare the data dir ${error.path}: ${error.message}; nothing was started`),
      HostLockError: (error) => reportFailure(`corral: cannot take the data dir's lock ${error.lockFile}: ${error.message}`),
      ServeError: (error) => reportFailure(`corral: cannot listen on ${error.address}: ${error.message}`),
      BoundedServerConfigError: (error) => reportFailure(`corral: ${error.message}`)
    }),
    // Said only of a host that was up and was stopped (a failed start has said why already).
    Effect.onInterrupt(() => stderrLine("corral: stopped"))
  )
}
