/**
 * EffectiveConfig: the host's configuration once loaded (every fragment merged and decoded). The host
 * loads it once at start; every part of the host reads this one value.
 */
import { Context } from "effect"
import type { HostConfig } from "./HostConfig.js"

/** The effective config of the current host. */
export class EffectiveConfig extends Context.Tag("corral/EffectiveConfig")<EffectiveConfig, HostConfig>() {}
