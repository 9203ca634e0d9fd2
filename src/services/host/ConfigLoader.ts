/**
 * ConfigLoader: the host's effective config, from factory fragments, the host's defaults and operator
 * fragments, with where each value came from; or every problem that stops it from loading.
 */
import { Context, type Effect } from "effect"
import type { ConfigError, HostConfig } from "./HostConfig.js"

/** Where the fragments come from. */
export interface ConfigLoadOptions {
  /** Holds one directory per bundled module; its `config/*.json` are the factory fragments. */
  readonly modulesDir: string
  /** The host's data directory; its `config/*.json` are the operator fragments. */
  readonly dataDir: string
  /** The host's own defaults fragment, merged between factory and operator fragments. */
  readonly hostDefaults?: unknown
}

/** A decoded effective config and where each of its values came from. */
export interface LoadedConfig {
  readonly config: HostConfig
  /** Every fragment's source, in merge order: absolute file paths and `hostDefaultsSource`. */
  readonly sources: ReadonlyArray<string>
  /** The source that last set a path (as `renderConfigPath` writes it); undefined for schema defaults. */
  readonly provenance: (path: string) => string | undefined
}

/** The source name of the host's defaults fragment in errors, `sources` and provenance. */
export const hostDefaultsSource = "(host defaults)"

/** The source named by problems that no fragment's path can be blamed for. */
export const mergedConfigSource = "(merged config)"

/** Loading and checking the layered config; both read the fragments afresh on every run. */
export interface ConfigLoaderShape {
  /** The effective config; fails with the first problem (its reason says how many more there are). */
  readonly load: Effect.Effect<LoadedConfig, ConfigError>
  /** Every problem of the config, in merge order; empty when it loads. */
  readonly validateAll: Effect.Effect<ReadonlyArray<ConfigError>>
}

/** The host's config loader. */
export class ConfigLoader extends Context.Tag("corral/ConfigLoader")<ConfigLoader, ConfigLoaderShape>() {}
