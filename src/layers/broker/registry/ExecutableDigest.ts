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
import { Deferred, Effect, Either, Exit, FiberId } from "effect"
import type { Scope } from "effect"
import { type BackendError, launchFailed } from "../../../services/broker/BackendRegistry.js"
import type { ServiceDefinition } from "../../../services/broker/ServiceDefinition.js"
import { errorCode, errorText } from "../../../services/system/ErrorDetails.js"
import { checkExecutableTrusted } from "../../system/FileTrust.js"

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")

/** The launch config that shapes a process; a change to it is a new backend. */
const computeFingerprint = (definition: ServiceDefinition, executable: string): string =>
  sha256(JSON.stringify({
    executable,
    args: definition.launch.args,
    env: definition.launch.env,
    endpoint: definition.endpoint.kind,
    sandbox: definition.sandbox_profile,
    runAs: definition.run_as
  })).slice(0, 12)

// Per definition object (one per parse of its file: an edited file is a new object) and executable
// path (a `{version}` in it makes one per version): one sha256 per definition, not one per hello.
const maxFingerprintsPerDefinition = 64
const fingerprints = new WeakMap<ServiceDefinition, Map<string, string>>()

/** `computeFingerprint`, memoized per definition object and executable. */
const launchFingerprint = (definition: ServiceDefinition, executable: string): string => {
  let known = fingerprints.get(definition)
  if (known === undefined) {
    known = new Map()
    fingerprints.set(definition, known)
  }
  let fingerprint = known.get(executable)
  if (fingerprint === undefined) {
    fingerprint = computeFingerprint(definition, executable)
    // Versions are the client's to choose (above a floor): keep the memo bounded.
    if (known.size >= maxFingerprintsPerDefinition) known.clear()
    known.set(executable, fingerprint)
  }
  return fingerprint
}

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

/** One stamp's digest: being computed (`value` undefined) or known. */
interface DigestEntry {
  readonly answer: Deferred.Deferred<string, BackendError>
  value: string | undefined
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
    // Plain maps: each read and each write is one synchronous step of this module's code, so a warm
    // hello reads a known verdict and digest without a fiber suspension or a copied map.
    const verdicts = new Map<string, TrustVerdict>()
    // Keyed by `<stamp>\0<path>`: a changed file is a new entry, never a stale digest.
    const digests = new Map<string, DigestEntry>()

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
    const stampOf = (service: string, executable: string): Either.Either<string, BackendError> => {
      let stat: Fs.BigIntStats
      try {
        stat = Fs.statSync(executable, { bigint: true })
      } catch (error) {
        return Either.left(cannot(service, executable)(error))
      }
      return stat.isFile()
        ? Either.right(`${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`)
        : Either.left(launchFailed(service, `executable ${executable} is not a regular file (${where(service)})`))
    }

    /** Walks the trust rule for `stamp` now; a refusal is never remembered. */
    const walkTrust = (service: string, executable: string, stamp: string, now: number): Effect.Effect<void, BackendError> =>
      Effect.zipRight(
        Effect.tapError(checkTrust(service, executable), () => Effect.sync(() => verdicts.delete(executable))),
        Effect.sync(() => verdicts.set(executable, { stamp, checkedAt: now }))
      )

    /** One hashing fiber per stamp; every caller of the stamp waits on its answer. A failure is forgotten. */
    const digestOf = (service: string, executable: string, key: string): Effect.Effect<string, BackendError> =>
      Effect.suspend(() => {
        const known = digests.get(key)
        if (known !== undefined) return known.value === undefined ? Deferred.await(known.answer) : Effect.succeed(known.value)
        const entry: DigestEntry = { answer: Deferred.unsafeMake<string, BackendError>(FiberId.none), value: undefined }
        digests.set(key, entry)
        for (const oldest of digests.keys()) {
          // A pending entry evicted still answers its waiters: they hold its Deferred.
          if (digests.size <= maxDigests) break
          digests.delete(oldest)
        }
        const settle = (exit: Exit.Exit<string, BackendError>) =>
          Effect.zipRight(
            Effect.sync(() => {
              if (Exit.isSuccess(exit)) entry.value = exit.value
              else if (digests.get(key) === entry) digests.delete(key)
            }),
            Deferred.done(entry.answer, exit)
          )
        // Settled however the hash ends, so no waiter hangs: cut short by the registry's end, it is a refusal.
        const hash = hashFile(executable).pipe(
          Effect.mapError(cannot(service, executable)),
          Effect.onInterrupt(() => Deferred.fail(entry.answer, launchFailed(service, "the broker is stopping")))
        )
        // In the registry's scope, not the caller's: an interrupted first hello leaves the others their answer.
        return Effect.zipRight(Effect.forkIn(Effect.flatMap(Effect.exit(hash), settle), scope), Deferred.await(entry.answer))
      })

    const digest = (service: string, executable: string): Effect.Effect<string, BackendError> =>
      Effect.clockWith((clock) => {
        const stamp = stampOf(service, executable)
        if (Either.isLeft(stamp)) return Effect.fail(stamp.left)
        const key = `${stamp.right}\0${executable}`
        const now = clock.unsafeCurrentTimeMillis()
        const verdict = verdicts.get(executable)
        // The trust walk runs again when the stamp changed or the last walk is older than `recheckMs`.
        if (verdict !== undefined && verdict.stamp === stamp.right && now - verdict.checkedAt < recheckMs) {
          const value = digests.get(key)?.value
          return value === undefined ? digestOf(service, executable, key) : Effect.succeed(value)
        }
        return Effect.zipRight(walkTrust(service, executable, stamp.right, now), digestOf(service, executable, key))
      })

    const checkBeforeLaunch = (service: string, executable: string): Effect.Effect<void, BackendError> =>
      Effect.asVoid(checkTrust(service, executable))

    return { digest, checkBeforeLaunch }
  })
