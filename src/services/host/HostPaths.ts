/**
 * HostPaths: where one host keeps its files under its data directory (a DESIGN contract):
 * `config/`, `run/` (0700: host.lock, control.json, control.token, broker.sock), `logs/`, `trace/`, `services/`, `work/`.
 */
import { Context, Schema } from "effect"

/** The files and directories of one host. */
export interface HostPathsShape {
  readonly dataDir: string
  /** The bundled modules (`modules/` of this package): factory config fragments and module code. */
  readonly modulesDir: string
  readonly config: string
  readonly run: string
  readonly controlJson: string
  readonly controlToken: string
  readonly brokerSocket: string
  /** Names the one host running on this data directory. */
  readonly hostLock: string
  readonly logs: string
  readonly trace: string
  readonly services: string
  /** Private working directories of restricted modules. */
  readonly work: string
}

/** The paths of the current host. */
export class HostPaths extends Context.Tag("corral/HostPaths")<HostPaths, HostPathsShape>() {}

/** The data directory could not be created or closed to others (permissions, a full disk, a file in the way). */
export class DataDirError extends Schema.TaggedError<DataDirError>()("DataDirError", {
  path: Schema.String,
  message: Schema.String
}) {}
