/**
 * One host per data directory: `run/host.lock` names the host that holds it (pid and process start
 * time, so a reused pid is not mistaken for it). A second host refuses to start and changes nothing.
 */
import { Schema } from "effect"

/** Another live host holds the data directory. */
export class HostAlreadyRunning extends Schema.TaggedError<HostAlreadyRunning>()("HostAlreadyRunning", {
  dataDir: Schema.String,
  pid: Schema.Number,
  lockFile: Schema.String
}) {
  override get message(): string {
    return `another host (pid ${this.pid}) is running on ${this.dataDir}; stop it first (its lock: ${this.lockFile})`
  }
}

/** The lock file could not be read or written (permissions, a full disk). */
export class HostLockError extends Schema.TaggedError<HostLockError>()("HostLockError", {
  lockFile: Schema.String,
  message: Schema.String
}) {}

/** What `run/host.lock` holds. */
export const HostLockRecord = Schema.parseJson(Schema.Struct({
  pid: Schema.Int,
  /** Field 22 of `/proc/<pid>/stat`: clock ticks since boot when the process started. */
  start_ticks: Schema.String,
  started_at: Schema.String
}))
/** What `run/host.lock` holds. */
export type HostLockRecord = typeof HostLockRecord.Type
