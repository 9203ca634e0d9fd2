/**
 * Health of a ready component: its health path is checked on a schedule; `unhealthy_threshold`
 * failures in a row (invocation timeouts count too) make it `degraded`, a success makes it `ready`.
 * Each check's result is also handed to a listener (the host's event feed).
 */
import { Duration, Effect, Schedule } from "effect"
import { defaultHttpConfig, type HttpConfig } from "../../../services/host/HostConfig.js"
import type { ModuleClientShape } from "../../../services/host/ModuleClient.js"
import type { Managed, Probe } from "./ComponentState.js"
import type { Transitions } from "./Transitions.js"

/** One health check's result, as the host's event feed publishes it. */
export interface HealthResult {
  readonly at: string
  readonly component: string
  readonly ok: boolean
  readonly detail: string
}

/** The health checks of a supervisor's components. */
export interface HealthWatch {
  /** Checks `endpoint` every `health_interval_ms`, forever. */
  readonly watch: (managed: Managed, http: HttpConfig, endpoint: string) => Effect.Effect<void>
  /** One failure: a failed check or an invocation timeout (`probe` null: nothing to record). */
  readonly unhealthy: (managed: Managed, detail: string, probe: Probe | null) => Effect.Effect<void>
}

/** Health checks through `client`, phase changes through `transitions`, each result to `publish`. */
export const makeHealthWatch = (
  client: ModuleClientShape,
  transitions: Transitions,
  publish: (result: HealthResult) => Effect.Effect<void>
): HealthWatch => {
  // Decided on the state at the instant it is written: a check and an invocation timeout may report at once.
  const healthy = (managed: Managed, probe: Probe) =>
    transitions.update(managed, (state) => ({
      patch: { unhealthyStreak: 0, lastHealth: probe },
      ...(state.phase === "degraded" ? { to: { phase: "ready", reason: "health recovered" } } : {})
    }))

  const unhealthy = (managed: Managed, detail: string, probe: Probe | null) =>
    transitions.update(managed, (state) => {
      const streak = state.unhealthyStreak + 1
      const threshold = (managed.config.http ?? defaultHttpConfig).unhealthy_threshold
      const patch = { unhealthyStreak: streak, ...(probe === null ? {} : { lastHealth: probe }) }
      return state.phase === "ready" && streak >= threshold
        ? { patch, to: { phase: "degraded", reason: `${streak} failures in a row: ${detail}` } }
        : { patch }
    })

  const watch = (managed: Managed, http: HttpConfig, endpoint: string) => {
    const check = client.get(endpoint, http.health_path, {
      timeoutMs: Math.min(http.request_timeout_ms, http.health_interval_ms),
      maxResponseBytes: 65_536
    }).pipe(
      Effect.map((reply) => reply.status === 200 ? { ok: true, detail: "200" } : { ok: false, detail: `health path answered ${reply.status}` }),
      Effect.catchAll((error) => Effect.succeed({ ok: false, detail: error.message })),
      Effect.flatMap(({ ok, detail }) =>
        Effect.flatMap(transitions.probe(ok, detail), (probe) =>
          // Published first: a failure that reaches `restart_after_unhealthy` ends this fiber's run.
          Effect.zipRight(
            publish({ at: probe.at, component: managed.id, ok, detail }),
            ok ? healthy(managed, probe) : unhealthy(managed, detail, probe)
          ))
      )
    )
    return check.pipe(Effect.repeat(Schedule.spaced(Duration.millis(http.health_interval_ms))), Effect.asVoid)
  }

  return { watch, unhealthy }
}
