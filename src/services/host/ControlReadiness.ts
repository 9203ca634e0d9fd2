/**
 * The host's readiness (`GET /readyz`): the control server's own (not draining, no alarmed route), every
 * component out of a transitional or failed phase, and no `fail_closed` hook blocked by a supervised
 * component outside `ready`/`degraded` (every call of that hook would be denied). Without auth only the
 * status word is shown; with it, which parts are not ready.
 */
import { Schema } from "effect"
import { type ComponentView, isRoutable, Phase } from "./Component.js"
import type { HookSpec } from "./HookRunner.js"
import { AlarmedRoute } from "../server/RouteAlarms.js"

/** What anyone may read: one status word. */
export const ReadinessWord = Schema.Struct({ status: Schema.Literal("ready", "not_ready") })

/** A component that keeps the host not ready. */
export const ComponentNotReady = Schema.Struct({ id: Schema.String, phase: Phase, last_error: Schema.NullOr(Schema.String) })

/** A `fail_closed` hook whose supervised component is outside `ready`/`degraded`. */
export const HookBlocked = Schema.Struct({ hook: Schema.String, component: Schema.String, phase: Phase })

/** What an authenticated caller reads. */
export const ReadinessDetail = Schema.Struct({
  status: Schema.Literal("ready", "not_ready"),
  ready: Schema.Boolean,
  draining: Schema.Boolean,
  alarmed_routes: Schema.Array(AlarmedRoute),
  components_not_ready: Schema.Array(ComponentNotReady),
  hooks_blocked: Schema.Array(HookBlocked)
})
/** What an authenticated caller reads. */
export type ReadinessDetail = typeof ReadinessDetail.Type

/** The kind of component the host supervises (the others have no lifecycle of their own). */
export const supervisedKind = "http_local_json"

const transitionalOrFailed = (phase: Phase): boolean => phase === "failed" || phase === "starting" || phase === "stopping"

/** The host's readiness from the server's own, the components and the hooks. */
export const hostReadiness = (
  server: { readonly ready: boolean; readonly draining: boolean; readonly alarmed_routes: ReadinessDetail["alarmed_routes"] },
  components: ReadonlyArray<ComponentView>,
  hooks: ReadonlyArray<HookSpec>
): ReadinessDetail => {
  const byId = new Map(components.map((component) => [component.id, component]))
  const hooksBlocked = hooks
    .filter((hook) => hook.failurePolicy === "fail_closed")
    .flatMap((hook) =>
      hook.components.flatMap((id) => {
        const component = byId.get(id)
        return component !== undefined && component.kind === supervisedKind && !isRoutable(component.phase)
          ? [{ hook: hook.name, component: id, phase: component.phase }]
          : []
      })
    )
  const notReady = components.filter((component) => transitionalOrFailed(component.phase))
  const ready = server.ready && notReady.length === 0 && hooksBlocked.length === 0
  return {
    status: ready ? "ready" : "not_ready",
    ready,
    draining: server.draining,
    alarmed_routes: server.alarmed_routes,
    components_not_ready: notReady.map((component) => ({ id: component.id, phase: component.phase, last_error: component.last_error })),
    hooks_blocked: hooksBlocked
  }
}
