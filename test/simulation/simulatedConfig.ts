/**
 * The configs a simulated host runs: two supervised components, `middleware.b` after `middleware.a`,
 * in the `ingress` hook, with short timeouts so faults play out in a few virtual seconds; and the
 * variants a reload switches between (b changed, b removed, c added).
 */
import { Schema } from "effect"
import { HostConfig } from "../../src/services/host/HostConfig.js"

/** The supervised components a schedule can name. */
export const componentIds = ["middleware.a", "middleware.b", "middleware.c"] as const
/** A supervised component's id. */
export type ComponentId = typeof componentIds[number]

/** What a reload can switch to. */
export const configVariants = ["base", "b-changed", "b-removed", "c-added"] as const
/** A config a reload can switch to. */
export type ConfigVariant = typeof configVariants[number]

/** The restart policy of every component (a restart decision is checked against it). */
export const restartPolicy = {
  mode: "on_failure",
  max_restarts: 2,
  window_sec: 10,
  backoff_initial_ms: 100,
  backoff_max_ms: 1_000,
  stable_after_sec: 5,
  restart_after_unhealthy: 3
} as const

/** TERM → KILL grace of every component. */
export const stopTimeoutMs = 300

/** `http.request_timeout_ms` of every component: the longest one invocation step may take. */
export const requestTimeoutMs = 400

/** `http.startup_timeout_ms` of every component. */
export const startupTimeoutMs = 1_000

const supervised = (args: ReadonlyArray<string>, dependsOn: ReadonlyArray<string> = []) => ({
  kind: "http_local_json",
  launch: { executable: "/usr/bin/env", args },
  http: {
    port: "auto",
    startup_timeout_ms: startupTimeoutMs,
    health_interval_ms: 1_000,
    unhealthy_threshold: 2,
    request_timeout_ms: requestTimeoutMs
  },
  restart_policy: restartPolicy,
  stop_timeout_ms: stopTimeoutMs,
  depends_on: dependsOn
})

const a = supervised(["a"])
const b = supervised(["b"], ["middleware.a"])

const raw: Readonly<Record<ConfigVariant, unknown>> = {
  base: { components: { "middleware.a": a, "middleware.b": b }, hooks: { ingress: ["middleware.a", "middleware.b"] } },
  "b-changed": {
    components: { "middleware.a": a, "middleware.b": supervised(["b", "--changed"], ["middleware.a"]) },
    hooks: { ingress: ["middleware.a", "middleware.b"] }
  },
  "b-removed": { components: { "middleware.a": a }, hooks: { ingress: ["middleware.a"] } },
  "c-added": {
    components: { "middleware.a": a, "middleware.b": b, "middleware.c": supervised(["c"]) },
    hooks: { ingress: ["middleware.a", "middleware.b", "middleware.c"] }
  }
}

const decoded = Object.fromEntries(
  Object.entries(raw).map(([variant, config]) => [variant, Schema.decodeUnknownSync(HostConfig)(config)])
)

/** The decoded config of `variant`. */
export const configOf = (variant: ConfigVariant): HostConfig => {
  const config = decoded[variant]
  if (config === undefined) throw new Error(`no simulated config named ${variant}`)
  return config
}
