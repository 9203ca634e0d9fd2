/**
 * Reads the fragments in merge order: each module's `config/*.json` (modules in lexical order), the
 * host's defaults, then `<dataDir>/config/*.json`. Each is parsed and checked on its own.
 */
import * as Fs from "node:fs/promises"
import * as NodePath from "node:path"
import { Effect, Either } from "effect"
import { type ConfigLoadOptions, hostDefaultsSource } from "../../../services/host/ConfigLoader.js"
import { errorCode, errorText } from "../../../services/system/ErrorDetails.js"
import { exceedsJsonDepth, maxJsonDepth } from "../../../services/system/JsonDepth.js"
import type { ConfigProblem } from "./ConfigProblem.js"
import { checkFragment } from "./FragmentCheck.js"
import { parseJson } from "./JsonParsing.js"
import { withoutPaths } from "./Salvage.js"

/** A fragment that parsed, with its placeholders resolved. */
export interface Fragment {
  /** An absolute file path, or `hostDefaultsSource`. */
  readonly source: string
  /** The fragment, less what its own check refused (see `Salvage`). */
  readonly value: Record<string, unknown>
  /** Whether its own check found nothing wrong (else `value` is what is left after the refused values). */
  readonly clean: boolean
}

const fsCall = <A>(file: string, what: string, call: () => Promise<A>): Effect.Effect<A, ConfigProblem> =>
  Effect.tryPromise({ try: call, catch: (error) => ({ file, path: [], reason: `cannot ${what}: ${errorText(error)}` }) })

/** Entry names of `dir` in lexical order; none when it does not exist. */
const entriesOf = (dir: string): Effect.Effect<ReadonlyArray<string>, ConfigProblem> =>
  Effect.tryPromise({ try: () => Fs.readdir(dir), catch: (error) => error }).pipe(
    Effect.map((names) => [...names].sort()),
    Effect.catchAll((error) =>
      errorCode(error) === "ENOENT"
        ? Effect.succeed([])
        : Effect.fail<ConfigProblem>({ file: dir, path: [], reason: `cannot read directory: ${errorText(error)}` })
    )
  )

/** Absolute paths of the entries of `dir` that are directories (`"directory"`) or `.json` files (`"json"`). */
const entriesOfKind = (dir: string, kind: "directory" | "json"): Effect.Effect<ReadonlyArray<string>, ConfigProblem> =>
  entriesOf(dir).pipe(
    Effect.map((names) => names.filter((name) => kind === "directory" || name.endsWith(".json"))),
    Effect.flatMap((names) =>
      Effect.filter(
        names.map((name) => NodePath.join(dir, name)),
        (file) =>
          fsCall(file, "read", () => Fs.stat(file)).pipe(
            Effect.map((stat) => (kind === "directory" ? stat.isDirectory() : stat.isFile()))
          )
      )
    )
  )

/**
 * Every fragment that reads and parses (those whose check failed marked not clean, less what it refused),
 * and every problem; a problem with one file or directory does not stop the others from being read.
 */
export const readFragments = (
  options: ConfigLoadOptions
): Effect.Effect<{ readonly fragments: ReadonlyArray<Fragment>; readonly problems: ReadonlyArray<ConfigProblem> }> =>
  Effect.gen(function*() {
    const fragments: Array<Fragment> = []
    const problems: Array<ConfigProblem> = []
    const dataDir = NodePath.resolve(options.dataDir)
    const attempt = <A>(effect: Effect.Effect<A, ConfigProblem>, fallback: A) =>
      Effect.catchAll(effect, (problem) =>
        Effect.sync(() => {
          problems.push(problem)
          return fallback
        }))
    const accept = (source: string, value: unknown, moduleDir: string | undefined) => {
      const checked = checkFragment(value, { dataDir, moduleDir })
      problems.push(...checked.issues.map((issue) => ({ file: source, ...issue })))
      if (checked.value === undefined) return
      const clean = checked.issues.length === 0
      const kept = clean ? checked.value : withoutPaths(checked.value, checked.issues.map((issue) => issue.path))
      fragments.push({ source, value: kept, clean })
    }
    const readFile = (file: string, moduleDir: string | undefined) =>
      attempt(
        fsCall(file, "read file", () => Fs.readFile(file, "utf8")).pipe(
          Effect.map((text) => {
            // Checked before parsing: the parser's error positions and every later stage recurse.
            if (exceedsJsonDepth(text)) {
              problems.push({ file, path: [], reason: `nests deeper than ${maxJsonDepth} levels; a config fragment never needs that` })
              return
            }
            const parsed = parseJson(text)
            if (Either.isLeft(parsed)) problems.push({ file, path: [], reason: parsed.left })
            else accept(file, parsed.right, moduleDir)
          })
        ),
        undefined
      )

    for (const moduleDir of yield* attempt(entriesOfKind(NodePath.resolve(options.modulesDir), "directory"), [])) {
      for (const file of yield* attempt(entriesOfKind(NodePath.join(moduleDir, "config"), "json"), [])) {
        yield* readFile(file, moduleDir)
      }
    }
    if (options.hostDefaults !== undefined) accept(hostDefaultsSource, options.hostDefaults, undefined)
    for (const file of yield* attempt(entriesOfKind(NodePath.join(dataDir, "config"), "json"), [])) {
      yield* readFile(file, undefined)
    }
    return { fragments, problems }
  })
