/**
 * ExecutorsReload: how a reload swaps the host's executors. New executors are built first (a component
 * its kind cannot run fails the reload before anything changed) and put in use in one step afterwards;
 * a component whose config did not change keeps its executor, with its in-flight invocations and permits.
 */
import { Context } from "effect"
import type { Effect } from "effect"
import type { ConfigError, HostConfig } from "./HostConfig.js"

/** Executors built for a new config, not in use until `commit`. */
export interface PreparedExecutors {
  /** Component ids whose executor is new: added, or their config changed. */
  readonly rebuilt: ReadonlyArray<string>
  /** Puts the new set in use at once; every later `Executors.get` sees it. */
  readonly commit: Effect.Effect<void>
}

/** Rebuilding the host's executors for a reloaded config. */
export interface ExecutorsReloadShape {
  /** Builds what `config` needs beside the executors in use, changing nothing yet. */
  readonly prepare: (config: HostConfig) => Effect.Effect<PreparedExecutors, ConfigError>
}

/** Rebuilding the current host's executors. */
export class ExecutorsReload extends Context.Tag("corral/ExecutorsReload")<ExecutorsReload, ExecutorsReloadShape>() {}
