/**
 * What makes two launches the same backend: the executable's sha256 (re-hashed only when its file
 * changed) and a fingerprint of the launch config. A rebuilt binary or an edited definition gets a
 * new registry key, so an old resident backend is never handed out for it. Every acquire first checks
 * the executable (and its `#!` interpreter) by the file-trust rule: nothing another user could have
 * written is run, or handed out.
 */
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Ref } from "effect"
import { type BackendError, launchFailed } from "../../../services/broker/BackendRegistry.js"
import type { ServiceDefinition } from "../../../services/broker/ServiceDefinition.js"
import { errorCode, errorText } from "../../../services/system/ErrorDetails.js"
import { checkExecutableTrusted } from "../../system/FileTrust.js"

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")

/** The launch config that shapes a process; a change to it is a new backend. */
const launchFingerprint = (definition: ServiceDefinition, executable: string): string =>
  sha256(JSON.stringify({
    executable,
    args: definition.launch.args,
    env: definition.launch.env,
    endpoint: definition.endpoint.kind,
    sandbox: definition.sandbox_profile,
    runAs: definition.run_as
  })).slice(0, 12)

/** What a registry key is made of, resolved at acquire time. */
export interface KeyParts {
  readonly service: string
  readonly version: string
  readonly executable: string
  readonly definition: ServiceDefinition
}

/** The registry key of a launch: `<service>@<version>/sha256:<digest>/launch:<fingerprint>`. */
export const backendKey = ({ definition, executable, service, version }: KeyParts, digest: string): string =>
  `${service}@${version}/sha256:${digest}/launch:${launchFingerprint(definition, executable)}`

/** sha256 of the file's bytes, streamed. */
const hashFile = (file: string): Effect.Effect<string, unknown> =>
  Effect.async<string, unknown>((resume) => {
    const hash = createHash("sha256")
    const stream = Fs.createReadStream(file)
    stream.on("error", (error) => resume(Effect.fail(error)))
    stream.on("data", (chunk) => hash.update(chunk))
    stream.on("end", () => resume(Effect.succeed(hash.digest("hex"))))
    return Effect.sync(() => stream.destroy())
  })

/** The sha256 of a trusted service executable; errors name the definition file that points at it. */
export type ExecutableDigest = (service: string, executable: string) => Effect.Effect<string, BackendError>

/**
 * A digest function with its own cache: an executable is re-hashed only when its inode, size,
 * mtime or ctime change. `definitionsDir` is where `<service>.service.json` lives, for messages.
 */
export const makeExecutableDigest = (definitionsDir: string): Effect.Effect<ExecutableDigest> =>
  Effect.map(
    Ref.make<ReadonlyMap<string, { readonly stamp: string; readonly digest: string }>>(new Map()),
    (digests) => (service, executable) =>
      Effect.gen(function*() {
        const where = `${Path.join(definitionsDir, `${service}.service.json`)}: launch.executable`
        const cannot = (error: unknown) =>
          launchFailed(
            service,
            errorCode(error) === "ENOENT"
              ? `executable ${executable} does not exist (${where})`
              : `cannot read executable ${executable} (${where}): ${errorText(error)}`
          )
        const stat = yield* Effect.tryPromise({
          try: () => Fs.promises.stat(executable, { bigint: true }),
          catch: cannot
        })
        if (!stat.isFile()) return yield* launchFailed(service, `executable ${executable} is not a regular file (${where})`)
        yield* Effect.mapError(checkExecutableTrusted(executable), (untrusted) =>
          launchFailed(service, `refusing to run ${executable} (${where}): ${untrusted.message}`))
        const stamp = `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`
        const known = (yield* Ref.get(digests)).get(executable)
        if (known !== undefined && known.stamp === stamp) return known.digest
        const digest = yield* Effect.mapError(hashFile(executable), cannot)
        yield* Ref.update(digests, (map) => new Map(map).set(executable, { stamp, digest }))
        return digest
      })
  )
