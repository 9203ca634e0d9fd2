/**
 * The host's data directory, laid out and created: everything under it exists when the layer is
 * built, and the data dir and `run/` are 0700 whatever they were before.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Layer } from "effect"
import { DataDirError, HostPaths, type HostPathsShape } from "../../services/host/HostPaths.js"
import { errorText } from "../../services/system/ErrorDetails.js"

/** The paths of a host whose data directory is `dataDir` (nothing is created). */
export const hostPaths = (dataDir: string, modulesDir: string): HostPathsShape => ({
  dataDir,
  modulesDir,
  config: Path.join(dataDir, "config"),
  run: Path.join(dataDir, "run"),
  controlJson: Path.join(dataDir, "run", "control.json"),
  controlToken: Path.join(dataDir, "run", "control.token"),
  brokerSocket: Path.join(dataDir, "run", "broker.sock"),
  hostLock: Path.join(dataDir, "run", "host.lock"),
  logs: Path.join(dataDir, "logs"),
  trace: Path.join(dataDir, "trace"),
  services: Path.join(dataDir, "services"),
  work: Path.join(dataDir, "work")
})

/** Creates the data directory's folders (`run/` as 0700) and provides their paths. */
export const HostPathsLive = (options: { readonly dataDir: string; readonly modulesDir: string }): Layer.Layer<HostPaths, DataDirError> =>
  Layer.effect(
    HostPaths,
    Effect.try({
      try: () => {
        const paths = hostPaths(options.dataDir, options.modulesDir)
        // The data dir holds config (with launch.env secrets), logs and traces: only the host's user reads it.
        // Modules never need to walk it: a restricted module sees its work dir through its own mount.
        Fs.mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 })
        Fs.chmodSync(paths.dataDir, 0o700)
        for (const dir of [paths.config, paths.logs, paths.trace]) Fs.mkdirSync(dir, { recursive: true })
        Fs.mkdirSync(paths.run, { recursive: true, mode: 0o700 })
        Fs.chmodSync(paths.run, 0o700)
        return paths
      },
      catch: (error) => new DataDirError({ path: options.dataDir, message: errorText(error) })
    })
  )
