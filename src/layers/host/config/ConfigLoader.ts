/**
 * The layered config loader: factory fragments (`<modulesDir>/<m>/config/*.json`), then the host's
 * defaults, then operator fragments (`<dataDir>/config/*.json`), each checked on its own, deep-merged
 * with provenance, decoded with `HostConfig`, cross-checked, and what components launch checked by the
 * file-trust rule. It reads files and never writes any.
 */
import { Effect, Either, Layer } from "effect"
import { ConfigLoader, type ConfigLoadOptions, type LoadedConfig } from "../../../services/host/ConfigLoader.js"
import { ConfigError } from "../../../services/host/HostConfig.js"
import { type ConfigProblem, toConfigError } from "./ConfigProblem.js"
import { crossCheck } from "./CrossChecks.js"
import { type Fragment, readFragments } from "./FragmentReading.js"
import { checkLaunchTrust } from "./LaunchTrust.js"
import { echoesRefused, salvageable } from "./Salvage.js"
import { decodeMerged } from "./MergedDecode.js"
import { mergeFragments, type Provenance } from "./Provenance.js"

/** Re-exported: the loader's options, result and source names are defined with the service. */
export type { ConfigLoadOptions, LoadedConfig } from "../../../services/host/ConfigLoader.js"
export { hostDefaultsSource, mergedConfigSource } from "../../../services/host/ConfigLoader.js"
/** Re-exported: config paths are rendered the same everywhere. */
export { renderConfigPath } from "../../../services/system/ParseIssues.js"

/**
 * Loads the effective config; fails with the first problem (its reason says how many more there are).
 * Missing directories contribute no fragments; files not ending in `.json` are ignored.
 */
export const loadHostConfig = (options: ConfigLoadOptions): Effect.Effect<LoadedConfig, ConfigError> =>
  checkConfig(options).pipe(Effect.mapError(firstWithCount))

/** Every problem of the config, in merge order; empty when it loads. For `corral config check`-style use. */
export const validateAll = (options: ConfigLoadOptions): Effect.Effect<ReadonlyArray<ConfigError>> =>
  checkConfig(options).pipe(Effect.match({ onFailure: (problems) => problems, onSuccess: () => [] }))

/** Pretty JSON of the resolved config, with host-owned runtime facts under `runtime` when given. */
export const renderEffectiveConfig = (loaded: LoadedConfig, runtime?: unknown): string =>
  JSON.stringify(runtime === undefined ? loaded.config : { ...loaded.config, runtime }, null, 2)

/** The `ConfigLoader` for these directories; every `load` and `validateAll` reads the files afresh. */
export const ConfigLoaderLive = (options: ConfigLoadOptions): Layer.Layer<ConfigLoader> =>
  Layer.succeed(ConfigLoader, ConfigLoader.of({ load: loadHostConfig(options), validateAll: validateAll(options) }))

/**
 * Every problem at once where that can be trusted: when fragments fail their own checks, the merged
 * config is still checked without the refused values (`Salvage`) and its problems that do not merely
 * echo a refused value are reported too; a file that cannot be read or parsed, or a refused top-level
 * section, stops there. A merged config that does not decode hides the cross-checks, and any problem
 * hides the launch-trust checks (which read files, and would check a config that will not load).
 */
const checkConfig = (
  options: ConfigLoadOptions
): Effect.Effect<LoadedConfig, readonly [ConfigError, ...Array<ConfigError>]> =>
  readFragments(options).pipe(
    Effect.flatMap(({ fragments, problems }) =>
      Either.match(problems.length > 0 ? Either.left(withMergedProblems(fragments, problems)) : mergeAndDecode(fragments), {
        onLeft: failWith,
        onRight: ({ loaded, provenance }) =>
          Effect.flatMap(checkLaunchTrust(loaded.config, provenance), (untrusted) =>
            untrusted.length > 0 ? failWith(untrusted) : Effect.succeed(loaded))
      })
    )
  )

/** The fragments' own problems, then those of the merged config without the refused values, in merge order. */
const withMergedProblems = (fragments: ReadonlyArray<Fragment>, problems: ReadonlyArray<ConfigProblem>): ReadonlyArray<ConfigProblem> => {
  if (!salvageable(problems)) return problems
  const merged = mergeAndDecode(fragments)
  const more = Either.isLeft(merged) ? merged.left.filter((problem) => !echoesRefused(problem, problems)) : []
  const order = new Map(fragments.map((fragment, index) => [fragment.source, index]))
  const rank = (problem: ConfigProblem) => order.get(problem.file) ?? order.size
  // Stable: each file's problems keep their order, files come in merge order.
  return [...problems, ...more].map((problem, index) => ({ problem, index }))
    .sort((a, b) => rank(a.problem) - rank(b.problem) || a.index - b.index)
    .map(({ problem }) => problem)
}

const failWith = (problems: ReadonlyArray<ConfigProblem>): Effect.Effect<never, readonly [ConfigError, ...Array<ConfigError>]> => {
  const [first, ...rest] = problems.map(toConfigError)
  return first === undefined ? Effect.die("config check failed without a problem") : Effect.fail([first, ...rest] as const)
}

const mergeAndDecode = (
  fragments: ReadonlyArray<Fragment>
): Either.Either<{ readonly loaded: LoadedConfig; readonly provenance: Provenance }, ReadonlyArray<ConfigProblem>> => {
  const { merged, provenance } = mergeFragments(fragments)
  return Either.flatMap(decodeMerged(merged, provenance), (config) => {
    const problems = crossCheck(config, provenance)
    const loaded: LoadedConfig = {
      config,
      sources: fragments.map((fragment) => fragment.source),
      provenance: (path) => provenance.get(path)
    }
    return problems.length > 0 ? Either.left(problems) : Either.right({ loaded, provenance })
  })
}

const firstWithCount = (problems: readonly [ConfigError, ...Array<ConfigError>]): ConfigError => {
  const [first] = problems
  const more = problems.length - 1
  return more === 0
    ? first
    : new ConfigError({ ...first, reason: `${first.reason} (and ${more} more problem${more === 1 ? "" : "s"})` })
}
