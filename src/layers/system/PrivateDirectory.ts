/**
 * A directory only the host's user may enter: created 0700 when missing, tightened to 0700 when not,
 * and refused when something else (a file, a symlink) or another user's directory holds its path.
 */
import * as Fs from "node:fs"
import { Effect, Schema } from "effect"
import { errorText } from "../../services/system/ErrorDetails.js"

/** A private directory could not be made: `message` names the path and what to do. */
export class PrivateDirectoryError extends Schema.TaggedError<PrivateDirectoryError>()("PrivateDirectoryError", {
  path: Schema.String,
  message: Schema.String
}) {}

/** Who may own the directory: the host's user only, or anyone (a directory the host hands to a module user). */
export interface PrivateDirectoryOptions {
  readonly anyOwner?: boolean
}

/**
 * Makes `path` a 0700 directory (parents created 0700 too) and returns it; throws a `PrivateDirectoryError`.
 * For the synchronous sites (inside an `Effect.try`); `privateDirectory` is the effect.
 */
export const privateDirectorySync = (path: string, options: PrivateDirectoryOptions = {}): string => {
  const refuse = (message: string) => new PrivateDirectoryError({ path, message })
  // lstat: a symlink planted at the path must not lend us someone else's directory.
  const existing = Fs.lstatSync(path, { throwIfNoEntry: false })
  if (existing === undefined) {
    try {
      Fs.mkdirSync(path, { recursive: true, mode: 0o700 })
    } catch (error) {
      throw refuse(`cannot create the private directory ${path}: ${errorText(error)}`)
    }
  }
  const stat = existing ?? Fs.lstatSync(path, { throwIfNoEntry: false })
  if (stat === undefined || !stat.isDirectory()) {
    throw refuse(`${path} is not a directory; remove it so the host can create its private directory there`)
  }
  const uid = process.getuid?.()
  if (options.anyOwner !== true && uid !== undefined && stat.uid !== uid) {
    throw refuse(`${path} is owned by uid ${stat.uid}, not the host's uid ${uid}; remove it`)
  }
  try {
    Fs.chmodSync(path, 0o700)
  } catch (error) {
    throw refuse(`cannot make ${path} private (mode 0700): ${errorText(error)}`)
  }
  return path
}

/** Makes `path` a 0700 directory owned by the host's user (see `privateDirectorySync`). */
export const privateDirectory = (
  path: string,
  options: PrivateDirectoryOptions = {}
): Effect.Effect<string, PrivateDirectoryError> =>
  Effect.try({
    try: () => privateDirectorySync(path, options),
    catch: (error) =>
      error instanceof PrivateDirectoryError ? error : new PrivateDirectoryError({ path, message: `${path}: ${errorText(error)}` })
  })
