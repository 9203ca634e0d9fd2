/**
 * Broker service definitions: `<data-dir>/services/<name>.service.json` says how to launch a backend
 * on demand — which versions may be asked for, the command line (with `{version}`, `{endpoint}`,
 * `{path}` and `{port}` placeholders), the endpoint kind, readiness and idle bounds, the sandbox.
 */
import { Context, Either, Schema } from "effect"
import type { Effect } from "effect"
import { ServiceName } from "./BrokerProtocol.js"
import { type ConfigError, DurationMs, maxDurationMs, SandboxProfile } from "../host/HostConfig.js"
import type { UntrustedFile } from "../system/FileTrust.js"

/** What a definition file's name ends with. */
export const serviceDefinitionSuffix = ".service.json"

/** A version a client may ask for: no `/`, no leading `.`, so it is safe inside paths and file names. */
export const versionPattern = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/

/** A version string as a definition writes it. */
export const VersionString = Schema.String.pipe(
  Schema.pattern(versionPattern, {
    message: () => "a version is 1 to 64 of A-Z, a-z, 0-9, '.', '_', '+' and '-', starting with a letter or digit"
  })
)

/** A semver floor, exactly `x.y.z`. */
export const SemverFloor = Schema.String.pipe(
  Schema.pattern(/^\d+\.\d+\.\d+$/, { message: () => "min_version is a semver floor like \"1.2.0\" (x.y.z)" })
)

/** An absolute executable path (it may contain `{version}`). */
export const AbsoluteExecutable = Schema.String.pipe(
  Schema.filter((path) => path.startsWith("/") || `must be an absolute path, got ${JSON.stringify(path)}`)
)

/** How a backend is started. Placeholders are replaced in `executable` (`{version}`), `args` and `env` values. */
export const BackendLaunch = Schema.Struct({
  executable: AbsoluteExecutable,
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) })
})
/** How a backend is started. */
export type BackendLaunch = typeof BackendLaunch.Type

/** The endpoint kind the broker allocates: a unix socket path under its run dir, or a loopback port. */
export const BackendEndpointKind = Schema.Literal("unix", "tcp")
/** The endpoint kind. */
export type BackendEndpointKind = typeof BackendEndpointKind.Type

/** One service definition, as decoded (defaults filled in). */
export const ServiceDefinition = Schema.Struct({
  name: ServiceName,
  default_version: VersionString,
  min_version: Schema.optional(SemverFloor),
  version_allow_list: Schema.optional(Schema.Array(VersionString)),
  launch: BackendLaunch,
  endpoint: Schema.Struct({ kind: BackendEndpointKind }),
  ready_timeout_ms: Schema.optionalWith(DurationMs, { default: () => 10_000 }),
  /** A backend nobody asked for during this long (at most 24 h) is stopped; absent: it stays until the broker stops. */
  idle_exit_sec: Schema.optional(Schema.Number.pipe(
    Schema.positive(),
    Schema.lessThanOrEqualTo(maxDurationMs / 1000, {
      message: () => `expected a number of seconds above 0 and at most ${maxDurationMs / 1000} (24 h)`
    })
  )),
  sandbox_profile: Schema.optionalWith(SandboxProfile, { default: () => "none" as const }),
  /** `module-restricted` on a root host: the user the backend runs as; absent: the default module user. */
  run_as: Schema.optional(Schema.NonEmptyString)
})
/** One service definition. */
export type ServiceDefinition = typeof ServiceDefinition.Type

/** No definition file for the service (or the name cannot be one). */
export class UnknownService extends Schema.TaggedError<UnknownService>()("UnknownService", {
  service: Schema.String,
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `unknown service ${JSON.stringify(this.service)}: ${this.reason}`
  }
}

/** Reads service definitions, re-reading a file whenever it changed. */
export interface ServiceDefinitionsShape {
  /** The directory holding `<name>.service.json`. */
  readonly dir: string
  /**
   * The current definition of `name`; errors name the file and the JSON path, or the file or
   * directory that someone other than the host's user or root could write.
   */
  readonly lookup: (name: string) => Effect.Effect<ServiceDefinition, ConfigError | UnknownService | UntrustedFile>
}

/** The broker's service definitions (`<data-dir>/services/`). */
export class ServiceDefinitions extends Context.Tag("corral/ServiceDefinitions")<ServiceDefinitions, ServiceDefinitionsShape>() {}

/** A requested version the definition does not allow. */
export interface VersionBlocked {
  readonly code: "version_blocked"
  readonly message: string
}

type Semver = {
  readonly core: readonly [number, number, number]
  readonly prerelease: ReadonlyArray<string>
}

const semverPattern = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

const parseSemver = (text: string): Semver | undefined => {
  const match = semverPattern.exec(text)
  if (match === null) return undefined
  return {
    core: [Number(match[1]), Number(match[2]), Number(match[3])],
    prerelease: match[4] === undefined ? [] : match[4].split(".")
  }
}

const compareIdentifiers = (a: string, b: string): number => {
  const numeric = /^\d+$/
  if (numeric.test(a) && numeric.test(b)) return Number(a) - Number(b)
  if (numeric.test(a)) return -1
  if (numeric.test(b)) return 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** Semver precedence (build metadata ignored); negative when `a` comes before `b`. */
const compareSemver = (a: Semver, b: Semver): number => {
  const core = a.core[0] - b.core[0] || a.core[1] - b.core[1] || a.core[2] - b.core[2]
  if (core !== 0) return core
  // A pre-release comes before its release; otherwise identifiers compare left to right.
  if (a.prerelease.length === 0 || b.prerelease.length === 0) return b.prerelease.length - a.prerelease.length
  for (let i = 0; i < Math.min(a.prerelease.length, b.prerelease.length); i++) {
    const diff = compareIdentifiers(a.prerelease[i] ?? "", b.prerelease[i] ?? "")
    if (diff !== 0) return diff
  }
  return a.prerelease.length - b.prerelease.length
}

/**
 * Resolves the version of a hello (`requested`, or the definition's default) and checks it against
 * `min_version` (semver precedence) and `version_allow_list` (exact match). Pure.
 */
export const checkVersion = (
  definition: Pick<ServiceDefinition, "name" | "default_version" | "min_version" | "version_allow_list">,
  requested: string | undefined
): Either.Either<string, VersionBlocked> => {
  const version = requested ?? definition.default_version
  const blocked = (message: string) => Either.left({ code: "version_blocked" as const, message })
  const subject = `${definition.name} version ${JSON.stringify(version)}`
  if (!versionPattern.test(version)) {
    return blocked(`${subject} is not a valid version (1 to 64 of A-Z, a-z, 0-9, '.', '_', '+', '-')`)
  }
  if (definition.min_version !== undefined) {
    const floor = parseSemver(definition.min_version)
    const parsed = parseSemver(version)
    if (floor !== undefined && parsed === undefined) {
      return blocked(`${subject} is not semver (x.y.z), so it cannot be checked against min_version ${definition.min_version}`)
    }
    if (floor !== undefined && parsed !== undefined && compareSemver(parsed, floor) < 0) {
      return blocked(`${subject} is below min_version ${definition.min_version}`)
    }
  }
  const allowList = definition.version_allow_list
  if (allowList !== undefined && !allowList.includes(version)) {
    return blocked(
      `${subject} is not in version_allow_list [${allowList.map((item) => JSON.stringify(item)).join(", ")}]`
    )
  }
  return Either.right(version)
}
