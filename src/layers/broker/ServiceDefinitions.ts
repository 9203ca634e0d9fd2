/**
 * ServiceDefinitions: reads `<dir>/<name>.service.json` on demand, decodes it with Schema and keeps
 * it until the file changes (device, inode, size, mtime or ctime), so an edited definition is honoured
 * by the next hello without a restart. The directory and the file must pass the file-trust rule (owned
 * by the host's user or root, not writable by group or others, symlinks resolved): the broker runs what
 * a definition says, so whoever can write one can make it run their program.
 *
 * Cost per lookup: one synchronous `stat` of the file. The trust walks, the directory check and the
 * parse run again only when that stamp changed or the last check is older than `recheckMs`. Nobody can
 * swap or edit the file without changing its stamp (a new inode, or a new mtime/ctime: a chmod or chown
 * changes ctime), so such a change is re-checked at once; a loosened directory further up is seen
 * within `recheckMs`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Either, Layer, Schema } from "effect"
import { ServiceName } from "../../services/broker/BrokerProtocol.js"
import { ConfigError } from "../../services/host/HostConfig.js"
import {
  ServiceDefinition,
  ServiceDefinitions,
  type ServiceDefinitionsShape,
  serviceDefinitionSuffix,
  UnknownService,
  checkVersion
} from "../../services/broker/ServiceDefinition.js"
import type { UntrustedFile } from "../../services/system/FileTrust.js"
import { checkFileTrusted } from "../system/FileTrust.js"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { parseProblems, renderConfigPath } from "../../services/system/ParseIssues.js"

interface CachedDefinition {
  readonly stamp: string
  readonly result: Either.Either<ServiceDefinition, ConfigError>
  /** When the directory and the file last passed the trust rule. */
  readonly checkedAt: number
}

/** How long a definition's trust verdict stands while its file is unchanged. */
export const defaultDefinitionRecheckMs = 1_000

const stampOf = (stat: Fs.BigIntStats): string => `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`

/** The stamp of `file` now, or undefined when it cannot be stat'ed (the full check then says why). */
const currentStamp = (file: string): string | undefined => {
  try {
    const stat = Fs.statSync(file, { bigint: true, throwIfNoEntry: false })
    return stat?.isFile() === true ? stampOf(stat) : undefined
  } catch {
    return undefined
  }
}

type Segment = PropertyKey

const isServiceName = Schema.is(ServiceName)

const decodeDefinition = Schema.decodeUnknownEither(ServiceDefinition, { errors: "all", onExcessProperty: "error" })

const placeholderKinds: ReadonlyArray<readonly [string, "unix" | "tcp"]> = [["{path}", "unix"], ["{port}", "tcp"]]

/** Checks that need the whole definition and the file name; the first problem, if any. */
const crossCheck = (
  definition: ServiceDefinition,
  baseName: string
): { readonly path: ReadonlyArray<Segment>; readonly reason: string } | undefined => {
  if (definition.name !== baseName) {
    return {
      path: ["name"],
      reason: `must equal the file's base name ${JSON.stringify(baseName)}, got ${JSON.stringify(definition.name)}`
    }
  }
  const texts: ReadonlyArray<readonly [ReadonlyArray<Segment>, string]> = [
    ...definition.launch.args.map((arg, index) => [["launch", "args", index], arg] as const),
    ...Object.entries(definition.launch.env).map(([name, value]) => [["launch", "env", name], value] as const)
  ]
  for (const [path, text] of texts) {
    for (const [placeholder, kind] of placeholderKinds) {
      if (text.includes(placeholder) && definition.endpoint.kind !== kind) {
        return { path, reason: `${placeholder} is only available when endpoint.kind is "${kind}"` }
      }
    }
  }
  const own = checkVersion(definition, undefined)
  if (Either.isLeft(own)) return { path: ["default_version"], reason: own.left.message }
  return undefined
}

/** Decodes the text of `file` (pure); errors name the file and the JSON path. */
export const parseServiceDefinition = (
  file: string,
  text: string
): Either.Either<ServiceDefinition, ConfigError> => {
  const fail = (path: ReadonlyArray<Segment>, reason: string) =>
    Either.left(new ConfigError({ file, path: renderConfigPath(path), reason }))
  let json: unknown
  try {
    // Editors on some systems save a byte-order mark, which JSON.parse rejects.
    json = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text)
  } catch (error) {
    return fail([], `invalid JSON: ${errorText(error)}`)
  }
  const decoded = decodeDefinition(json)
  if (Either.isLeft(decoded)) {
    const issues = parseProblems(decoded.left)
    const [first] = issues
    if (first === undefined) return fail([], "does not match the service definition schema")
    const more = issues.length - 1
    return fail(first.path, more === 0 ? first.message : `${first.message} (and ${more} more problem${more === 1 ? "" : "s"})`)
  }
  const problem = crossCheck(decoded.right, Path.basename(file).slice(0, -serviceDefinitionSuffix.length))
  return problem === undefined ? Either.right(decoded.right) : fail(problem.path, problem.reason)
}

/**
 * A reader of `dir` (made absolute) with its own cache. Nothing is read until the first lookup; an
 * unchanged file is trusted again without a walk for `recheckMs`.
 */
export const makeServiceDefinitions = (
  dir: string,
  recheckMs: number = defaultDefinitionRecheckMs
): Effect.Effect<ServiceDefinitionsShape> =>
  Effect.gen(function*() {
    const root = Path.resolve(dir)
    // A plain map: every read and write is one synchronous step of this reader's own code.
    const cache = new Map<string, CachedDefinition>()

    const unknown = (name: string, file: string, reason: string) => Effect.fail(new UnknownService({ service: name, file, reason }))

    // One step per hello while the file is unchanged: a stat and a cache read, no generator.
    const lookup = (name: string): Effect.Effect<ServiceDefinition, ConfigError | UnknownService | UntrustedFile> =>
      Effect.clockWith((clock) => {
        const file = Path.join(root, `${name}${serviceDefinitionSuffix}`)
        if (!isServiceName(name)) {
          return unknown(name, file, "a service name is 1 to 64 of a-z, 0-9 and -")
        }
        const now = clock.unsafeCurrentTimeMillis()
        const stamp = currentStamp(file)
        const cached = cache.get(name)
        if (stamp !== undefined && cached !== undefined && cached.stamp === stamp && now - cached.checkedAt < recheckMs) {
          return cached.result
        }
        return fullCheck(name, file, now)
      })

    /** The directory and the file checked by the trust rule, the file read and decoded unless its stamp is known. */
    const fullCheck = (name: string, file: string, now: number): Effect.Effect<ServiceDefinition, ConfigError | UnknownService | UntrustedFile> =>
      Effect.gen(function*() {
        const dirStat = yield* Effect.try(() => Fs.statSync(root)).pipe(Effect.either)
        if (Either.isLeft(dirStat)) {
          return yield* errorCode(dirStat.left.error) === "ENOENT"
            ? unknown(name, file, `the services directory ${root} does not exist`)
            : Effect.fail(new ConfigError({ file: root, path: "(root)", reason: `cannot read directory: ${errorText(dirStat.left.error)}` }))
        }
        yield* checkFileTrusted(root, "directory")
        const stat = yield* Effect.try(() => Fs.statSync(file, { bigint: true })).pipe(Effect.either)
        if (Either.isLeft(stat)) {
          return yield* errorCode(stat.left.error) === "ENOENT"
            ? unknown(name, file, `no definition file ${file}`)
            : Effect.fail(new ConfigError({ file, path: "(root)", reason: `cannot read file: ${errorText(stat.left.error)}` }))
        }
        if (!stat.right.isFile()) return yield* Effect.fail(new ConfigError({ file, path: "(root)", reason: "is not a regular file" }))
        yield* checkFileTrusted(file, "file")
        const stamp = stampOf(stat.right)
        const cached = cache.get(name)
        const result = cached !== undefined && cached.stamp === stamp
          ? cached.result
          : parseServiceDefinition(
            file,
            yield* Effect.try(() => Fs.readFileSync(file, "utf8")).pipe(
              Effect.mapError((error) => new ConfigError({ file, path: "(root)", reason: `cannot read file: ${errorText(error.error)}` }))
            )
          )
        cache.set(name, { stamp, result, checkedAt: now })
        return yield* result
      })

    return { dir: root, lookup }
  })

/** The service definitions of `dir`. */
export const ServiceDefinitionsLive = (dir: string): Layer.Layer<ServiceDefinitions> =>
  Layer.effect(ServiceDefinitions, makeServiceDefinitions(dir))
