/**
 * Where the CLI finds a host: its data directory (`--data-dir`, else `$CORRAL_DATA_DIR`, else
 * `~/.local/state/corral`), the bundled modules of this package, and what a running host left in `run/`.
 */
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Option } from "effect"
import { hostPaths } from "../host/HostPaths.js"
import { packageRoot } from "../system/PackageRoot.js"

/** The bundled modules (`modules/` of this package, beside `dist/`). */
export const bundledModulesDir = Path.join(packageRoot, "modules")

/** The data directory the CLI acts on: the option, else `$CORRAL_DATA_DIR`, else `~/.local/state/corral`. */
export const resolveDataDir = (option: Option.Option<string>): string =>
  Path.resolve(Option.getOrElse(option, () => process.env["CORRAL_DATA_DIR"] ?? Path.join(Os.homedir(), ".local", "state", "corral")))

/** The data dir the option names (else the environment's or the default), and whether the user named it. */
export const hostTargetFor = (option: Option.Option<string>): { readonly dataDir: string; readonly named: boolean } => ({
  dataDir: resolveDataDir(option),
  named: Option.isSome(option)
})

/** The paths of the host whose data directory the option names. */
export const hostPathsFor = (option: Option.Option<string>) => hostPaths(resolveDataDir(option), bundledModulesDir)

/** What `run/control.json` says of a running host, or null when none is running there (or it is unreadable). */
export const readControlFile = (controlJson: string): Effect.Effect<unknown> =>
  Effect.promise(() => Fs.readFile(controlJson, "utf8").then((text): unknown => JSON.parse(text), () => null))
