/**
 * The host's effective configuration: `host` (control server, logs, traces), `components` (one
 * supervised or invoked middleware each), `hooks` (ordered chains of components) and `modules`
 * (the subtree each module receives in `middleware-init`). Fragments are merged, then decoded here.
 */
import { Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const Port = Schema.Int.pipe(Schema.between(1, 65535))

/** The longest any duration setting may be: 24 h, far below where Node's timers overflow (2^31 ms fires at once). */
export const maxDurationMs = 86_400_000

/** A duration setting (`*_ms`): 1 ms to 24 h. */
export const DurationMs = Schema.Int.pipe(Schema.between(1, maxDurationMs, {
  message: () => `expected a whole number of milliseconds from 1 to ${maxDurationMs} (24 h)`
}))

/** A duration setting (`*_sec`): 1 s to 24 h. */
export const DurationSec = Schema.Int.pipe(Schema.between(1, maxDurationMs / 1000, {
  message: () => `expected a whole number of seconds from 1 to ${maxDurationMs / 1000} (24 h)`
}))

/** What a component id may be: it names files (`logs/<id>.log`, `work/<id>`), so it must be a safe file name. */
export const componentIdPattern = /^[a-z0-9][a-z0-9._-]{0,63}$/

/** A component id: 1 to 64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit, without `..`. */
export const ComponentId = Schema.String.pipe(
  Schema.filter((id) => componentIdPattern.test(id) && !id.includes(".."), {
    description: "a component id (1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit, no \"..\")",
    message: () =>
      "a component id is 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit, without \"..\" " +
      "(it names the component's log file and work dir)"
  })
)

/** Where the control API may listen: loopback only (127.0.0.0/8, `::1`, `localhost`). */
export const LoopbackHost = Schema.String.pipe(
  Schema.filter((host) => isLoopbackHost(host), {
    description: "a loopback address (127.0.0.0/8, \"::1\" or \"localhost\")",
    message: () =>
      "expected a loopback address (127.0.0.0/8, \"::1\" or \"localhost\"; the control API serves this machine only)"
  })
)

/** Whether `host` names the loopback interface: `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8. */
export const isLoopbackHost = (host: string): boolean => {
  if (host === "localhost" || host === "::1") return true
  const octets = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  return octets !== null && octets.slice(1).every((octet) => Number(octet) <= 255)
}

/** How a component's process is started. */
export const LaunchConfig = Schema.Struct({
  executable: Schema.NonEmptyString,
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  cwd: Schema.optional(Schema.NonEmptyString),
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /**
   * A file of `KEY=VALUE` lines (`#` comments and blank lines allowed; one pair of surrounding quotes is
   * stripped) added to the child's environment, read by the host at each launch and never printed.
   * `env` wins over it, and the host's `CORRAL_*` variables over both. A relative path is resolved like
   * `executable`: against `cwd` when given, else the host's working directory (`{data_dir}` works too).
   */
  env_file: Schema.optional(Schema.NonEmptyString),
  /**
   * `module-isolated`: the module's own directory, the only code it sees (read-only). Default: the
   * directory of the first absolute argument naming an existing file (its script).
   */
  module_dir: Schema.optional(Schema.NonEmptyString)
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
  /**
   * `tcp` (default): a loopback port. `unix`: no port at all; the module listens on a socket in the
   * host's 0700 `run/modules/` directory, passed in `CORRAL_MODULE_SOCKET` and `{socket}`.
   */
  transport: Schema.optionalWith(Schema.Literal("tcp", "unix"), { default: () => "tcp" as const }),
  invoke_path: Schema.optionalWith(Schema.String, { default: () => "/v1/middleware/invoke" }),
  ready_path: Schema.optionalWith(Schema.String, { default: () => "/readyz" }),
  health_path: Schema.optionalWith(Schema.String, { default: () => "/healthz" }),
  init_path: Schema.optionalWith(Schema.String, { default: () => "/v1/middleware/init" }),
  startup_timeout_ms: Schema.optionalWith(DurationMs, { default: () => 15_000 }),
  request_timeout_ms: Schema.optionalWith(DurationMs, { default: () => 5_000 }),
  max_response_bytes: Schema.optionalWith(PositiveInt, { default: () => 65_536 }),
  health_interval_ms: Schema.optionalWith(DurationMs, { default: () => 5_000 }),
  /** Consecutive failed health checks (or invocation timeouts) that make a ready component degraded. */
  unhealthy_threshold: Schema.optionalWith(PositiveInt, { default: () => 3 })
})
/** How the host talks HTTP JSON to a component. */
export type HttpConfig = typeof HttpConfig.Type

/** The `http` of a component that gives none: every default, decoded once. */
export const defaultHttpConfig: HttpConfig = Schema.decodeSync(HttpConfig)({})

/** When a supervised component is restarted after it fails. */
export const RestartPolicy = Schema.Struct({
  /**
   * `on_failure`: restart after a crash (a non-zero exit or a signal, also before ready) but not after a
   * clean exit 0 (the component is then `stopped`); `always`: after a clean exit too; `never`: a crash is
   * `failed`, a clean exit `stopped`.
   * A readiness timeout or a contract failure is `failed` whatever the mode.
   */
  mode: Schema.optionalWith(Schema.Literal("never", "on_failure", "always"), { default: () => "on_failure" as const }),
  max_restarts: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 3 }),
  window_sec: Schema.optionalWith(DurationSec, { default: () => 60 }),
  /** First restart delay; doubles per restart inside the window, with up to 20% jitter. */
  backoff_initial_ms: Schema.optionalWith(DurationMs, { default: () => 20 }),
  backoff_max_ms: Schema.optionalWith(DurationMs, { default: () => 10_000 }),
  /** Time up after which the restart budget is forgotten. */
  stable_after_sec: Schema.optionalWith(DurationSec, { default: () => 120 }),
  /**
   * Consecutive failed health checks (invocation timeouts count too, as for `http.unhealthy_threshold`)
   * after which a ready or degraded component is restarted, counted against the budget. Unset: never.
   */
  restart_after_unhealthy: Schema.optional(PositiveInt)
})
/** When a supervised component is restarted after it fails. */
export type RestartPolicy = typeof RestartPolicy.Type

/**
 * Named sandbox profiles; an unknown name is a config error. `module-isolated` is `module-restricted`
 * plus a private mount view (bubblewrap) holding only the system, the module's directory and its work dir.
 */
export const SandboxProfile = Schema.Literal("none", "module-restricted", "module-isolated")
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
  /**
   * `module-restricted` on a root host: the unprivileged user the module runs as (default `corral-module`,
   * created by the host when missing). A non-root host cannot switch users and says so at start.
   */
  run_as: Schema.optional(Schema.NonEmptyString),
  restart_policy: Schema.optionalWith(RestartPolicy, { default: () => Schema.decodeSync(RestartPolicy)({}) }),
  stop_timeout_ms: Schema.optionalWith(DurationMs, { default: () => 5_000 }),
  /** Invocations at once; more fail fast with a typed `busy` error. */
  max_concurrency: Schema.optionalWith(PositiveInt, { default: () => 16 }),
  /** `false` keeps a configured component out of the default start. */
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * Components this one needs: it starts after they are ready (host start, reload) and stops before
   * them. An unknown id or a cycle is a config error.
   */
  depends_on: Schema.optionalWith(Schema.Array(Schema.NonEmptyString), { default: () => [] })
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
      host: Schema.optionalWith(LoopbackHost, { default: () => "127.0.0.1" }),
      port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 0 }),
      max_connections: Schema.optionalWith(PositiveInt, { default: () => 64 }),
      handler_timeout_ms: Schema.optionalWith(DurationMs, { default: () => 30_000 }),
      /** Hook invocations run at once; fewer than `max_connections` (default half), so operator routes keep capacity. */
      max_hook_invocations: Schema.optional(PositiveInt),
      /** Whether `/metrics` needs the token like `/v1/*` (Prometheus sends it with `bearer_token_file`); false opens it. */
      metrics_auth: Schema.optionalWith(Schema.Boolean, { default: () => true })
    }).pipe(Schema.filter((control) =>
      control.max_hook_invocations === undefined || control.max_hook_invocations < control.max_connections ||
      `max_hook_invocations (${control.max_hook_invocations}) must be smaller than max_connections ` +
        `(${control.max_connections}): operator requests need capacity that hook calls cannot take`
    )),
    { default: () => ({ host: "127.0.0.1", port: 0, max_connections: 64, handler_timeout_ms: 30_000, metrics_auth: true }) }
  ),
  logs: Schema.optionalWith(RotationConfig, { default: () => ({ max_bytes: 1_048_576, keep: 3 }) }),
  trace: Schema.optionalWith(RotationConfig, { default: () => ({ max_bytes: 4_194_304, keep: 3 }) })
})

/** The effective configuration. */
export const HostConfig = Schema.Struct({
  host: Schema.optionalWith(HostSection, { default: () => Schema.decodeSync(HostSection)({}) }),
  components: Schema.optionalWith(Schema.Record({ key: ComponentId, value: ComponentConfig }), { default: () => ({}) }),
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
