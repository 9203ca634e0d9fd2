/**
 * `corral config show|check|schema`, read from the data dir's files (no host needed): the effective
 * config with secrets redacted (a table of path, source and value, or JSON with the runtime facts of a
 * running host), every problem of the config at once, and the JSON Schema of a fragment for editors.
 * This module loads the config loader: the CLI imports it only for these commands.
 */
import * as Path from "node:path"
import { Effect, Option } from "effect"
import { configFragmentSchema } from "../../services/host/ConfigSchema.js"
import type { ConfigError } from "../../services/host/HostConfig.js"
import { renderConfigPath } from "../../services/host/HostConfig.js"
import type { HostPathsShape } from "../../services/host/HostPaths.js"
import { ConfigLoader, type LoadedConfig } from "../../services/host/ConfigLoader.js"
import { redactSecrets } from "../../services/host/Redaction.js"
import { ConfigLoaderLive } from "../host/config/ConfigLoader.js"
import { hostDefaults } from "../host/hostDefaults.js"
import { sandboxFacts } from "../host/launcher/SandboxFacts.js"
import { readControlFile } from "./HostLocation.js"
import { type ReportedFailure, reportFailure, stderrLine, stdoutLine } from "./Terminal.js"
import { colourEnabled } from "./TerminalStyle.js"
import { renderTable } from "./TextTable.js"

const loaderFor = (paths: HostPathsShape) => ConfigLoaderLive({ modulesDir: paths.modulesDir, dataDir: paths.dataDir, hostDefaults })

/** `source` as short as it stays unambiguous: relative to the data dir or to the modules' parent. */
const shortSource = (paths: HostPathsShape, source: string | undefined): string => {
  if (source === undefined) return "(default)"
  if (!Path.isAbsolute(source)) return source
  for (const base of [paths.dataDir, Path.dirname(paths.modulesDir)]) {
    const relative = Path.relative(base, source)
    if (!relative.startsWith("..")) return relative
  }
  return source
}

/** Every leaf of `value` with its path (as `renderConfigPath` writes it); arrays of scalars and empty objects are leaves. */
const leaves = (value: unknown, path: ReadonlyArray<string | number>): ReadonlyArray<readonly [ReadonlyArray<string | number>, unknown]> => {
  if (Array.isArray(value)) {
    return value.every((item) => typeof item !== "object" || item === null)
      ? [[path, value]]
      : value.flatMap((item, index) => leaves(item, [...path, index]))
  }
  if (typeof value === "object" && value !== null && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([key, item]) => leaves(item, [...path, key]))
  }
  return [[path, value]]
}

const configTable = (paths: HostPathsShape, loaded: LoadedConfig, redacted: unknown): ReadonlyArray<string> =>
  renderTable(
    ["PATH", "SOURCE", "VALUE"],
    leaves(redacted, []).map(([path, value]) => {
      const rendered = renderConfigPath(path)
      return [{ text: rendered }, { text: shortSource(paths, loaded.provenance(rendered)) }, { text: JSON.stringify(value) ?? "null" }]
    }),
    { width: process.stdout.isTTY === true ? process.stdout.columns : undefined, colour: colourEnabled(process.stdout) }
  )

/** `corral config show`: the effective config, secrets redacted; `json` adds the runtime facts. */
export const showConfig = (paths: HostPathsShape, json: boolean): Effect.Effect<void, ConfigError> =>
  Effect.gen(function*() {
    const loaded = yield* Effect.flatMap(ConfigLoader, (loader) => loader.load).pipe(Effect.provide(loaderFor(paths)))
    const redacted = redactSecrets(loaded.config)
    if (!json) return yield* stdoutLine(configTable(paths, loaded, redacted).join("\n"))
    const control = yield* readControlFile(paths.controlJson)
    const runtime = { data_dir: paths.dataDir, modules_dir: paths.modulesDir, sources: loaded.sources, control, ...sandboxFacts() }
    yield* stdoutLine(JSON.stringify({ ...(typeof redacted === "object" && redacted !== null ? redacted : {}), runtime }, null, 2))
  })

/** `corral config check`: every problem of the config, each with its file; exit 1 when there is one. */
export const checkConfig = (paths: HostPathsShape): Effect.Effect<void, ReportedFailure> =>
  Effect.gen(function*() {
    const loader = yield* Effect.provide(ConfigLoader, loaderFor(paths))
    const problems = yield* loader.validateAll
    if (problems.length === 0) {
      const loaded = yield* Effect.option(loader.load)
      const count = Option.match(loaded, { onNone: () => "", onSome: (l) => ` (${l.sources.length} fragments)` })
      return yield* stdoutLine(`config OK${count}: ${paths.dataDir}`)
    }
    yield* stderrLine(`corral: the config of ${paths.dataDir} has ${problems.length} problem(s):`)
    for (const problem of problems) yield* stderrLine(`  ${problem.message}`)
    return yield* reportFailure("corral: nothing starts until they are fixed")
  })

/** `corral config schema`: the JSON Schema of a config fragment. */
export const printConfigSchema: Effect.Effect<void> = Effect.suspend(() => stdoutLine(JSON.stringify(configFragmentSchema(), null, 2)))
