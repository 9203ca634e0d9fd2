/**
 * HostReload: re-reads and checks the config; when it has problems nothing changes and every problem is
 * reported; when it loads, new components start, removed ones stop, changed ones restart, hook lists are
 * swapped at once, and unchanged components are left alone (same pid). `corral reload`, `POST /v1/reload`
 * and SIGHUP all come here.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { ConfigError } from "./HostConfig.js"

/** What a reload changed. */
export const ReloadOutcome = Schema.Struct({
  added: Schema.Array(Schema.String),
  removed: Schema.Array(Schema.String),
  restarted: Schema.Array(Schema.String),
  unchanged: Schema.Array(Schema.String),
  /** The hook names after the reload. */
  hooks: Schema.Array(Schema.String)
})
/** What a reload changed. */
export type ReloadOutcome = typeof ReloadOutcome.Type

/** The new config has problems: nothing was changed. */
export class ReloadRefused extends Schema.TaggedError<ReloadRefused>()("ReloadRefused", {
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `the config has ${this.problems.length} problem(s); nothing was changed:\n${this.problems.join("\n")}`
  }
}

/** Renders config problems the way `ReloadRefused` carries them (`file: path: reason`). */
export const problemLines = (errors: ReadonlyArray<ConfigError>): ReadonlyArray<string> => errors.map((error) => error.message)

/** Reloading the current host's config. */
export interface HostReloadShape {
  /** Reloads now; one reload at a time (a second waits for the first). */
  readonly reload: Effect.Effect<ReloadOutcome, ReloadRefused>
}

/** The current host's reload. */
export class HostReload extends Context.Tag("corral/HostReload")<HostReload, HostReloadShape>() {}
