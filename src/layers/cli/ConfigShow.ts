/** `corral config show`: the effective config of a data directory, with the runtime facts of a running host. */
import { Console, Effect } from "effect"
import type { ConfigError } from "../../services/host/HostConfig.js"
import type { HostPathsShape } from "../../services/host/HostPaths.js"
import { ConfigLoader } from "../../services/host/ConfigLoader.js"
import { renderEffectiveConfig } from "../host/config/ConfigLoader.js"
import { HostConfigLoaderLive } from "../host/HostLive.js"
import { sandboxFacts } from "../host/launcher/SandboxFacts.js"
import { readControlFile } from "./HostLocation.js"

/** Prints the effective config as JSON; nothing is started and no fragment is written. */
export const showConfig = (paths: HostPathsShape): Effect.Effect<void, ConfigError> =>
  Effect.gen(function*() {
    const loaded = yield* Effect.flatMap(ConfigLoader, (loader) => loader.load).pipe(Effect.provide(HostConfigLoaderLive(paths)))
    const control = yield* readControlFile(paths.controlJson)
    const sandbox = sandboxFacts()
    yield* Console.log(renderEffectiveConfig(loaded, { data_dir: paths.dataDir, modules_dir: paths.modulesDir, sources: loaded.sources, control, ...sandbox }))
  })
