/**
 * Component phases and the view of a component the host publishes.
 * `configured → starting → ready ⇄ degraded → stopping → stopped`, and `failed` (start-up failure,
 * contract violation, or restart budget spent; only an operator start/restart leaves it). A component
 * an operator stops before it was ever started goes `configured → stopped`.
 */
import { Schema } from "effect"
import { ModuleReport } from "./MiddlewareContract.js"
import { Isolation } from "./ProcessLauncher.js"

/** The phases of a component. */
export const Phase = Schema.Literal("configured", "starting", "ready", "degraded", "stopping", "stopped", "failed")
/** The phases of a component. */
export type Phase = typeof Phase.Type

/** Phases in which invocations are routed to a component. */
export const isRoutable = (phase: Phase): boolean => phase === "ready" || phase === "degraded"

/**
 * Where invocations for a component go right now: its phase, its endpoint when it has one, and the
 * launch token its current run was given (null when none runs, or for a module the host did not start).
 * The token is sent as `Authorization: Bearer …`; it never appears in a view, a log or an argv.
 */
export interface ComponentRoute {
  readonly phase: Phase
  readonly endpoint: string | null
  readonly token: string | null
}

/** A probe result kept for status. */
export const ProbeResult = Schema.NullOr(Schema.Struct({ at: Schema.String, ok: Schema.Boolean, detail: Schema.String }))

/** A component as `GET /v1/components` shows it. */
export const ComponentView = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  phase: Phase,
  pid: Schema.NullOr(Schema.Number),
  /** When the current process was launched (ISO 8601); null when none runs. */
  started_at: Schema.NullOr(Schema.String),
  /** The components this one starts after and stops before (`depends_on`). */
  depends_on: Schema.Array(Schema.String),
  endpoint: Schema.NullOr(Schema.String),
  restarts: Schema.Struct({ used: Schema.Number, left: Schema.Number }),
  next_attempt_at: Schema.NullOr(Schema.String),
  last_readiness: ProbeResult,
  last_health: ProbeResult,
  last_error: Schema.NullOr(Schema.String),
  report: Schema.NullOr(ModuleReport),
  /** The last lines of stdout and stderr of the current process, or of the last one once it has exited. */
  recent_log: Schema.Array(Schema.String),
  /** How far the component's processes are contained (`process-group-only`: a setsid'd grandchild can escape). */
  isolation: Isolation
})
/** A component as the control API shows it. */
export type ComponentView = typeof ComponentView.Type
