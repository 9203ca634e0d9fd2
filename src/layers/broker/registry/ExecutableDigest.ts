/**
 * What makes two launches the same backend: the executable's sha256 and a fingerprint of the launch
 * config. A rebuilt binary or an edited definition gets a new registry key, so an old resident backend
 * is never handed out for it.
 *
 * Cost per hello: one synchronous `stat` of the executable (its stamp: device, inode, size, mtime,
 * ctime). The file-trust walk (the executable, every directory and symlink on its way, its `#!`
 * interpreters) runs again only when the stamp changed or the last walk is older than `recheckMs`;
 * the sha256 is computed once per stamp, by one fiber, and every concurrent caller of that stamp waits
 * on it (a burst of first hellos for a 95 MB executable reads it once). A launch re-walks the trust
 * rule itself (`checkBeforeLaunch`), uncached, right before the process starts.
 */
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Clock, Deferred, Effect, Exit, Ref } from "effect"
import type { Scope } from "effect"
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

/** The digests and trust verdicts of service executables. */
export interface ExecutableDigests {
  /** The sha256 of a trusted service executable; errors name the definition file that points at it. */
  readonly digest: (service: string, executable: string) => Effect.Effect<string, BackendError>
  /** The full trust walk of the executable and its interpreters, uncached: run right before a launch. */
  readonly checkBeforeLaunch: (service: string, executable: string) => Effect.Effect<void, BackendError>
}

/** How long a trust verdict stands for an unchanged stamp. */
export const defaultTrustRecheckMs = 1_000

/** Digests kept (one per executable stamp); a pending one evicted still answers its waiters. */
const maxDigests = 64

interface TrustVerdict {
  readonly stamp: string
  readonly checkedAt: number
}

/**
 * Digests with their own caches. `definitionsDir` is where `<service>.service.json` lives (for
 * messages); hashing fibers run in the current scope, so none outlives the registry.
 */
export const makeExecutableDigests = (
  definitionsDir: string,
  recheckMs: number = defaultTrustRecheckMs
): Effect.Effect<ExecutableDigests, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const verdicts = yield* Ref.make<ReadonlyMap<string, TrustVerdict>>(new Map())
    // Keyed by `<stamp>\0<path>`: a changed file is a new entry, never a stale digest.
    const digests = yield* Ref.make<ReadonlyMap<string, Deferred.Deferred<string, BackendError>>>(new Map())

    const where = (service: string) => `${Path.join(definitionsDir, `${service}.service.json`)}: launch.executable`
    const cannot = (service: string, executable: string) => (error: unknown) =>
      launchFailed(
        service,
        errorCode(error) === "ENOENT"
          ? `executable ${executable} does not exist (${where(service)})`
          : `cannot read executable ${executable} (${where(service)}): ${errorText(error)}`
      )

    const checkTrust = (service: string, executable: string) =>
      Effect.mapError(checkExecutableTrusted(executable), (untrusted) =>
        launchFailed(service, `refusing to run ${executable} (${where(service)}): ${untrusted.message}`))

    /** The stamp of the file the path names now (symlinks followed): a change to its bytes, mode or owner changes it. */
    const stampOf = (service: string, executable: string): Effect.Effect<string, BackendError> =>
      Effect.flatMap(
        Effect.try({ try: () => Fs.statSync(executable, { bigint: true }), catch: cannot(service, executable) }),
        (stat) =>
          stat.isFile()
            ? Effect.succeed(`${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`)
            : Effect.fail(launchFailed(service, `executable ${executable} is not a regular file (${where(service)})`))
      )

    /** Walks the trust rule unless this stamp passed it within `recheckMs`; a refusal is never remembered. */
    const trusted = (service: string, executable: string, stamp: string): Effect.Effect<void, BackendError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const known = (yield* Ref.get(verdicts)).get(executable)
        if (known !== undefined && known.stamp === stamp && now - known.checkedAt < recheckMs) return
        yield* Effect.tapError(checkTrust(service, executable), () =>
          Ref.update(verdicts, (map) => {
            const next = new Map(map)
            next.delete(executable)
            return next
          }))
        yield* Ref.update(verdicts, (map) => new Map(map).set(executable, { stamp, checkedAt: now }))
      })

    /** One hashing fiber per stamp; every caller of the stamp waits on its answer. A failure is forgotten. */
    const digestOf = (service: string, executable: string, stamp: string): Effect.Effect<string, BackendError> =>
      Effect.gen(function*() {
        const key = `${stamp}\0${executable}`
        const known = (yield* Ref.get(digests)).get(key)
        if (known !== undefined) return yield* Deferred.await(known)
        const fresh = yield* Deferred.make<string, BackendError>()
        type Claim = readonly [Deferred.Deferred<string, BackendError>, boolean]
        const [entry, mine] = yield* Ref.modify(digests, (map): readonly [Claim, ReadonlyMap<string, Deferred.Deferred<string, BackendError>>] => {
          const existing = map.get(key)
          if (existing !== undefined) return [[existing, false], map]
          const next = new Map(map).set(key, fresh)
          for (const oldest of next.keys()) {
            if (next.size <= maxDigests) break
            next.delete(oldest)
          }
          return [[fresh, true], next]
        })
        if (mine) {
          // In the registry's scope, not the caller's: an interrupted first hello leaves the others their answer.
          const forget = Ref.update(digests, (map) => {
            if (map.get(key) !== fresh) return map
            const next = new Map(map)
            next.delete(key)
            return next
          })
          // Settled however the hash ends, so no waiter hangs: cut short by the registry's end, it is a refusal.
          const hash = hashFile(executable).pipe(
            Effect.mapError(cannot(service, executable)),
            Effect.onInterrupt(() => Deferred.fail(fresh, launchFailed(service, "the broker is stopping")))
          )
          yield* Effect.forkIn(
            Effect.flatMap(Effect.exit(hash), (exit) => Effect.zipRight(Exit.isFailure(exit) ? forget : Effect.void, Deferred.done(fresh, exit))),
            scope
          )
        }
        return yield* Deferred.await(entry)
      })

    const digest = (service: string, executable: string): Effect.Effect<string, BackendError> =>
      Effect.flatMap(stampOf(service, executable), (stamp) =>
        Effect.zipRight(trusted(service, executable, stamp), digestOf(service, executable, stamp)))

    const checkBeforeLaunch = (service: string, executable: string): Effect.Effect<void, BackendError> =>
      Effect.asVoid(checkTrust(service, executable))

    return { digest, checkBeforeLaunch }
  })
