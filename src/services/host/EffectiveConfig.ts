/**
 * EffectiveConfig and CurrentConfig: the host's configuration (every fragment merged and decoded).
 * `EffectiveConfig` is the config the host started with; `CurrentConfig` is the one it runs now, which a
 * reload replaces. What a reload can change (components, hooks, executors) reads `CurrentConfig`; what is
 * fixed for the life of the process (`host.*`: the control server's address and limits, log and trace
 * rotation) reads `EffectiveConfig`, and a reload that changes `host.*` is refused, so both agree on it.
 */
import { Context } from "effect"
import type { Effect, Stream } from "effect"
import type { HostConfig } from "./HostConfig.js"

/** The effective config the current host started with. */
export class EffectiveConfig extends Context.Tag("corral/EffectiveConfig")<EffectiveConfig, HostConfig>() {}

/** A config the host runs, with the fragments it was merged from. */
export interface ConfigSnapshot {
  readonly config: HostConfig
  /** Every fragment's source, in merge order: absolute file paths and `(host defaults)`. */
  readonly sources: ReadonlyArray<string>
}

/** The config the host runs now. */
export interface CurrentConfigShape {
  /** The config now: the start-time one until a reload applies another. */
  readonly get: Effect.Effect<ConfigSnapshot>
  /** The config now, then each one a reload applies. */
  readonly changes: Stream.Stream<ConfigSnapshot>
  /** Puts `next` in place; only `HostReload` calls it, once the running host matches `next`. */
  readonly replace: (next: ConfigSnapshot) => Effect.Effect<void>
}

/** The config the current host runs now (after any reloads). */
export class CurrentConfig extends Context.Tag("corral/CurrentConfig")<CurrentConfig, CurrentConfigShape>() {}
