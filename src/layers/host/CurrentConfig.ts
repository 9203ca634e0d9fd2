/**
 * The host's config at start and now: loaded once when the host starts (an invalid config starts
 * nothing), kept in a `SubscriptionRef` that a reload replaces once the running host matches it.
 */
import { Context, Effect, Layer, SubscriptionRef } from "effect"
import { ConfigLoader } from "../../services/host/ConfigLoader.js"
import { type ConfigSnapshot, CurrentConfig, type CurrentConfigShape, EffectiveConfig } from "../../services/host/EffectiveConfig.js"
import type { ConfigError } from "../../services/host/HostConfig.js"

/** A `CurrentConfig` holding `initial` until something replaces it. */
export const makeCurrentConfig = (initial: ConfigSnapshot): Effect.Effect<CurrentConfigShape> =>
  Effect.map(SubscriptionRef.make(initial), (ref) => ({
    get: SubscriptionRef.get(ref),
    changes: ref.changes,
    replace: (next) => SubscriptionRef.set(ref, next)
  }))

/** Loads the config once: `EffectiveConfig` keeps it for the life of the host, `CurrentConfig` starts from it. */
export const ConfigAtStartLive: Layer.Layer<EffectiveConfig | CurrentConfig, ConfigError, ConfigLoader> = Layer.effectContext(
  Effect.gen(function*() {
    const loaded = yield* (yield* ConfigLoader).load
    const current = yield* makeCurrentConfig({ config: loaded.config, sources: loaded.sources })
    return Context.make(EffectiveConfig, loaded.config).pipe(Context.add(CurrentConfig, current))
  })
)
