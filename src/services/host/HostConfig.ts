/**
 * The host's effective configuration: `host` (control server, logs, traces), `components` (one
 * supervised or invoked middleware each), `hooks` (ordered chains of components) and `modules`
 * (the subtree each module receives in `middleware-init`). Fragments are merged, then decoded here.
 */
import { Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const Port = Schema.Int.pipe(Schema.between(1, 65535))

/** How a component's process is started. */
export const LaunchConfig = Schema.Struct({
  executable: Schema.NonEmptyString,
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  cwd: Schema.optional(Schema.NonEmptyString),
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) })
})
/** How a component's process is started. */
export type LaunchConfig = typeof LaunchConfig.Type

/** A loopback HTTP endpoint: modules are never reached beyond this machine. */
export const LoopbackEndpoint = Schema.String.pipe(
  Schema.pattern(/^http:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}$/, {
    message: () => "expected a loopback endpoint like http://127.0.0.1:47951"
  })
)

/** How the host talks HTTP JSON to a component. */
export const HttpConfig = Schema.Struct({
  /** Where an already-running or fixed-port module listens. */
  endpoint: Schema.optional(LoopbackEndpoint),
  /** `auto`: the host picks a free loopback port and passes it in `CORRAL_MODULE_PORT` and `{port}`. */
  port: Schema.optional(Schema.Union(Schema.Literal("auto"), Port)),
  invoke_path: Schema.optionalWith(Schema.String, { default: () => "/v1/middleware/invoke" }),
  ready_path: Schema.optionalWith(Schema.String, { default: () => "/readyz" }),
  health_path: Schema.optionalWith(Schema.String, { default: () => "/healthz" }),
  init_path: Schema.optionalWith(Schema.String, { default: () => "/v1/middleware/init" }),
  startup_timeout_ms: Schema.optionalWith(PositiveInt, { default: () => 15_000 }),
  request_timeout_ms: Schema.optionalWith(PositiveInt, { default: () => 5_000 }),
  max_response_bytes: Schema.optionalWith(PositiveInt, { default: () => 65_536 }),
  health_interval_ms: Schema.optionalWith(PositiveInt, { default: () => 5_000 }),
  /** Consecutive failed health checks (or invocation timeouts) that make a ready component degraded. */
  unhealthy_threshold: Schema.optionalWith(PositiveInt, { default: () => 3 })
})
/** How the host talks HTTP JSON to a component. */
export type HttpConfig = typeof HttpConfig.Type

/** The `http` of a component that gives none: every default, decoded once. */
export const defaultHttpConfig: HttpConfig = Schema.decodeSync(HttpConfig)({})

/** When a supervised component is restarted after it fails. */
export const RestartPolicy = Schema.Struct({
  mode: Schema.optionalWith(Schema.Literal("never", "on_failure"), { default: () => "on_failure" as const }),
  max_restarts: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 3 }),
  window_sec: Schema.optionalWith(PositiveInt, { default: () => 60 }),
  /** First restart delay; doubles per restart inside the window, with up to 20% jitter. */
  backoff_initial_ms: Schema.optionalWith(PositiveInt, { default: () => 20 }),
  backoff_max_ms: Schema.optionalWith(PositiveInt, { default: () => 10_000 }),
  /** Time up after which the restart budget is forgotten. */
  stable_after_sec: Schema.optionalWith(PositiveInt, { default: () => 120 })
})
/** When a supervised component is restarted after it fails. */
export type RestartPolicy = typeof RestartPolicy.Type

/** Named sandbox profiles; an unknown name is a config error. */
export const SandboxProfile = Schema.Literal("none", "module-restricted")
/** Named sandbox profiles. */
export type SandboxProfile = typeof SandboxProfile.Type

/** The four executor kinds. */
export const ExecutorKind = Schema.Literal("in_process", "command_stdio", "local_http_json", "http_local_json")
/** The four executor kinds. */
export type ExecutorKind = typeof ExecutorKind.Type

/** One component: a middleware step the host invokes, and supervises when it is `http_local_json`. */
export const ComponentConfig = Schema.Struct({
  id: Schema.optional(Schema.NonEmptyString),
  kind: ExecutorKind,
  /** Which `modules` subtree the component receives in `middleware-init`. */
  module_id: Schema.optional(Schema.NonEmptyString),
  /** `in_process`: the name of a function registered with the host. */
  function: Schema.optional(Schema.NonEmptyString),
  launch: Schema.optional(LaunchConfig),
  http: Schema.optional(HttpConfig),
  sandbox_profile: Schema.optionalWith(SandboxProfile, { default: () => "none" as const }),
  restart_policy: Schema.optionalWith(RestartPolicy, { default: () => Schema.decodeSync(RestartPolicy)({}) }),
  stop_timeout_ms: Schema.optionalWith(PositiveInt, { default: () => 5_000 }),
  /** Invocations at once; more fail fast with a typed `busy` error. */
  max_concurrency: Schema.optionalWith(PositiveInt, { default: () => 16 }),
  /** `false` keeps a configured component out of the default start. */
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
/** One component. */
export type ComponentConfig = typeof ComponentConfig.Type

/** What a hook does when a step fails (not a deny: a failure). */
export const FailurePolicy = Schema.Literal("fail_closed", "fail_open")

/** A hook: an ordered chain of component ids, as a bare list or with its failure policy. */
export const HookConfig = Schema.Union(
  Schema.Array(Schema.NonEmptyString),
  Schema.Struct({
    components: Schema.Array(Schema.NonEmptyString),
    failure_policy: Schema.optionalWith(FailurePolicy, { default: () => "fail_closed" as const })
  })
)

/** Rotation of a log or trace file. */
export const RotationConfig = Schema.Struct({
  max_bytes: Schema.optionalWith(PositiveInt, { default: () => 1_048_576 }),
  keep: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 3 })
})

/** The host's own section. */
export const HostSection = Schema.Struct({
  control: Schema.optionalWith(
    Schema.Struct({
      host: Schema.optionalWith(Schema.String, { default: () => "127.0.0.1" }),
      port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 0 }),
      max_connections: Schema.optionalWith(PositiveInt, { default: () => 64 }),
      handler_timeout_ms: Schema.optionalWith(PositiveInt, { default: () => 30_000 })
    }),
    { default: () => ({ host: "127.0.0.1", port: 0, max_connections: 64, handler_timeout_ms: 30_000 }) }
  ),
  logs: Schema.optionalWith(RotationConfig, { default: () => ({ max_bytes: 1_048_576, keep: 3 }) }),
  trace: Schema.optionalWith(RotationConfig, { default: () => ({ max_bytes: 4_194_304, keep: 3 }) })
})

/** The effective configuration. */
export const HostConfig = Schema.Struct({
  host: Schema.optionalWith(HostSection, { default: () => Schema.decodeSync(HostSection)({}) }),
  components: Schema.optionalWith(Schema.Record({ key: Schema.NonEmptyString, value: ComponentConfig }), { default: () => ({}) }),
  hooks: Schema.optionalWith(Schema.Record({ key: Schema.NonEmptyString, value: HookConfig }), { default: () => ({}) }),
  modules: Schema.optionalWith(Schema.Record({ key: Schema.NonEmptyString, value: Schema.Unknown }), { default: () => ({}) })
})
/** The effective configuration. */
export type HostConfig = typeof HostConfig.Type

/** Re-exported: a `ConfigError`'s path is rendered by the one JSON-path renderer. */
export { renderConfigPath } from "../system/ParseIssues.js"

/** A configuration problem, named by file, JSON path and reason. Nothing starts while one exists. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.String,
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.file}: ${this.path}: ${this.reason}`
  }
}
