/**
 * A problem found while loading the config: the source it is blamed on, the JSON path and the
 * reason; and how it becomes the `ConfigError` callers see.
 */
import { ConfigError } from "../../../services/host/HostConfig.js"
import { renderConfigPath } from "../../../services/system/ParseIssues.js"

/** One step of a JSON path: an object key or an array index. */
export type ConfigSegment = string | number

/** A JSON path into a fragment or into the merged config. */
export type ConfigPath = ReadonlyArray<ConfigSegment>

/** A problem at a path, before it is blamed on a source. */
export interface PathIssue {
  readonly path: ConfigPath
  readonly reason: string
}

/** A problem blamed on a source: a fragment's file, `hostDefaultsSource` or `mergedConfigSource`. */
export interface ConfigProblem extends PathIssue {
  readonly file: string
}

/** The problem as a `ConfigError`, its path rendered by `renderConfigPath`. */
export const toConfigError = (problem: ConfigProblem): ConfigError =>
  new ConfigError({ file: problem.file, path: renderConfigPath(problem.path), reason: problem.reason })
