/**
 * The host's reload: re-read the fragments and check them; when anything is wrong, change nothing and
 * report every problem. Otherwise build the executors the new config needs, let the supervisor reconcile
 * (start added, stop removed, restart changed, leave the rest alone), then put the new executors and the
 * new config (with its hook lists) in use. One reload at a time; each publishes a `reload` host event.
 */
import { isDeepStrictEqual } from "node:util"
import { Clock, Effect, Either, Fiber, Layer, Predicate } from "effect"
import { ConfigLoader, type LoadedConfig, mergedConfigSource } from "../../services/host/ConfigLoader.js"
import { CurrentConfig } from "../../services/host/EffectiveConfig.js"
import { ExecutorsReload } from "../../services/host/ExecutorsReload.js"
import type { HostConfig } from "../../services/host/HostConfig.js"
import { HostEvents } from "../../services/host/HostEvents.js"
import { HostReload, problemLines, type ReloadOutcome, ReloadRefused } from "../../services/host/HostReload.js"
import { redactAt, redactedMarker } from "../../services/host/Redaction.js"
import { Supervisor } from "../../services/host/Supervisor.js"
import { renderConfigPath } from "../../services/system/ParseIssues.js"

type JsonPath = ReadonlyArray<string>

/** The leaf paths under `at` where `before` and `after` differ (a key on one side only counts as a change). */
const changedPaths = (before: unknown, after: unknown, at: JsonPath): ReadonlyArray<JsonPath> => {
  if (isDeepStrictEqual(before, after)) return []
  if (!Predicate.isRecord(before) || !Predicate.isRecord(after)) return [at]
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
  return keys.flatMap((key) => changedPaths(before[key], after[key], [...at, key]))
}

/**
 * `host.*` is read once, at start: the control server's address, limits and auth, log and trace
 * rotation. A reload that changes it is refused with one line per changed field, so the config the
 * host reports is always the one it runs.
 */
const restartOnlyProblems = (running: HostConfig, loaded: LoadedConfig): ReadonlyArray<string> =>
  changedPaths(running.host, loaded.config.host, ["host"]).map((path) => {
    const rendered = renderConfigPath(path)
    const source = loaded.provenance(rendered) ?? mergedConfigSource
    return `${source}: ${rendered}: changed from ${show(path, pathValue(running, path))} to ${show(path, pathValue(loaded.config, path))}, ` +
      "but host settings apply only when the host starts; restart the host to apply it, or put the old value back to reload the rest"
  })

const pathValue = (value: unknown, path: JsonPath): unknown =>
  path.reduce<unknown>((at, key) => (Predicate.isRecord(at) && Object.hasOwn(at, key) ? at[key] : undefined), value)

/** A host setting's value in a reload problem; a secret-looking one is never quoted. */
const show = (path: JsonPath, value: unknown): string => {
  const safe = redactAt(path, value)
  return value === undefined ? "(unset)" : safe === redactedMarker ? redactedMarker : JSON.stringify(safe)
}

/** The host's reload on its config loader, supervisor, executors and current config. */
export const HostReloadLive: Layer.Layer<
  HostReload,
  never,
  ConfigLoader | CurrentConfig | Supervisor | ExecutorsReload | HostEvents
> = Layer.scoped(
  HostReload,
  Effect.gen(function*() {
    const loader = yield* ConfigLoader
    const current = yield* CurrentConfig
    const supervisor = yield* Supervisor
    const executors = yield* ExecutorsReload
    const events = yield* HostEvents
    const lock = yield* Effect.makeSemaphore(1)

    const publish = (fields: Omit<ReloadOutcome, "hooks"> & { readonly applied: boolean; readonly problems: ReadonlyArray<string> }) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => events.publish({ _tag: "reload", at: new Date(now).toISOString(), ...fields }))

    // The caller reports the problems (SIGHUP's lines, the API's 422); the event keeps them for watchers.
    const refuse = (problems: ReadonlyArray<string>): Effect.Effect<never, ReloadRefused> =>
      publish({ applied: false, added: [], removed: [], restarted: [], unchanged: [], problems }).pipe(
        Effect.zipRight(Effect.fail(new ReloadRefused({ problems })))
      )

    /** The new config, or every problem it has (the load stops at the first, `validateAll` lists them all). */
    const loadChecked = Effect.gen(function*() {
      const loaded = yield* Effect.either(loader.load)
      if (Either.isRight(loaded)) return loaded.right
      const all = yield* loader.validateAll
      // The files may have been fixed between the two reads: the first problem still stands for this reload.
      return yield* refuse(all.length > 0 ? problemLines(all) : [loaded.left.message])
    })

    const apply = (loaded: LoadedConfig) =>
      Effect.gen(function*() {
        const prepared = yield* Effect.either(executors.prepare(loaded.config))
        if (Either.isLeft(prepared)) return yield* refuse([prepared.left.message])
        const reconciled = yield* supervisor.reconcile(loaded.config)
        yield* prepared.right.commit
        yield* current.replace({ config: loaded.config, sources: loaded.sources })
        const outcome: ReloadOutcome = {
          added: reconciled.added,
          removed: reconciled.removed,
          restarted: reconciled.restarted,
          unchanged: reconciled.unchanged,
          hooks: Object.keys(loaded.config.hooks)
        }
        yield* publish({ applied: true, added: outcome.added, removed: outcome.removed, restarted: outcome.restarted, unchanged: outcome.unchanged, problems: [] })
        yield* Effect.logInfo("config reloaded").pipe(Effect.annotateLogs({ ...outcome }))
        return outcome
      })

    const reloadOnce: Effect.Effect<ReloadOutcome, ReloadRefused> = lock.withPermits(1)(
      Effect.gen(function*() {
        const loaded = yield* loadChecked
        const running = yield* current.get
        const restartOnly = restartOnlyProblems(running.config, loaded)
        if (restartOnly.length > 0) return yield* refuse(restartOnly)
        return yield* apply(loaded)
      })
    )
    // Each reload runs on a fiber of the host's own scope: a caller that goes away (an HTTP client, a
    // stopping CLI) must not leave the supervisor reconciled while the old executors and hooks stay in
    // use. (Not `uninterruptible`: the supervisor's own waits and the fibers it forks must stay
    // interruptible.) The host stopping interrupts it, as it stops everything else.
    const scope = yield* Effect.scope
    return { reload: Effect.flatMap(Effect.forkIn(reloadOnce, scope), Fiber.join) }
  })
)
