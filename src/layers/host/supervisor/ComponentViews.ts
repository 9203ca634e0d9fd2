/**
 * What the control API shows of one component: its state, restart budget and recent output, read at
 * one moment. Never its launch token or environment.
 */
import { Clock, Effect, Option, Ref, SubscriptionRef } from "effect"
import type { ComponentView } from "../../../services/host/Component.js"
import type { Isolation } from "../../../services/host/ProcessLauncher.js"
import { budgetUsage } from "../../../services/policies/RestartBudget.js"
import { isSupervised, type Managed } from "./ComponentState.js"

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

/** The view of `managed` now; `isolation` is the launcher's. */
export const componentView = (managed: Managed, isolation: Isolation): Effect.Effect<ComponentView> =>
  Effect.gen(function*() {
    const state = yield* SubscriptionRef.get(managed.state)
    const now = yield* Clock.currentTimeMillis
    const child = yield* Ref.get(managed.child)
    // The running process's lines; once it has exited, what it wrote last (a crash's traceback stays visible).
    const recent = Option.isSome(child) ? yield* child.value.recentLines : state.recentLog
    const usage = isSupervised(managed.config) ? budgetUsage(managed.config.restart_policy, state.budget, now) : { used: 0, left: 0 }
    return {
      id: managed.id,
      kind: managed.config.kind,
      phase: state.phase,
      pid: state.pid,
      started_at: iso(state.startedAt),
      depends_on: managed.config.depends_on,
      endpoint: state.endpoint,
      restarts: usage,
      next_attempt_at: iso(state.nextAttemptAt),
      last_readiness: state.lastReadiness,
      last_health: state.lastHealth,
      last_error: state.lastError,
      report: state.report,
      recent_log: recent,
      isolation
    }
  })
