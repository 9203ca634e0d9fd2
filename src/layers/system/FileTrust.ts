/**
 * The file-trust rule (`services/system/FileTrust`) on the real filesystem: walks a path from `/`
 * with `lstat`, following each symlink as the kernel would, and judges the walk for the host's user.
 * An executable that is a script (`#!`) also has its interpreter checked.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Either } from "effect"
import {
  type Distrust,
  type EntryKind,
  judgeWalk,
  type PathEntry,
  type PathWalk,
  UntrustedFile,
  type WalkStep
} from "../../services/system/FileTrust.js"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"

/** Linux gives up after this many symlinks in one lookup (`MAXSYMLINKS`, ELOOP). */
const maxSymlinks = 40

/** Linux runs at most this many nested `#!` interpreters. */
const maxInterpreterDepth = 4

/** The uids whose files the host trusts: its own and root's. */
export const hostTrustedUids = (): ReadonlyArray<number> => {
  const own = process.getuid?.() ?? 0
  return own === 0 ? [0] : [own, 0]
}

const kindOf = (stat: Fs.Stats): EntryKind =>
  stat.isSymbolicLink() ? "symlink" : stat.isDirectory() ? "directory" : stat.isFile() ? "file" : "other"

const entryAt = (path: string): Either.Either<PathEntry, Distrust> => {
  try {
    const stat = Fs.lstatSync(path)
    return Either.right({ path, uid: stat.uid, mode: stat.mode & 0o7777, kind: kindOf(stat) })
  } catch (error) {
    return Either.left(
      errorCode(error) === "ENOENT" ? { _tag: "Missing", path } : { _tag: "Unreadable", path, detail: errorText(error) }
    )
  }
}

const components = (path: string): Array<string> => path.split("/").filter((part) => part !== "" && part !== ".")

/**
 * Walks `path` (made absolute against the cwd) from `/`: one step per entry met, symlinks included,
 * their targets walked in turn. Fails when an entry is missing, unreadable, or not a directory where
 * one is needed, or after too many symlinks. Synchronous: a handful of `lstat`s.
 */
export const walkPath = (path: string): Either.Either<PathWalk, Distrust> => {
  const root = entryAt("/")
  if (Either.isLeft(root)) return Either.left(root.left)
  const steps: Array<WalkStep> = []
  const pending = components(Path.resolve(path))
  let current = root.right
  let symlinks = 0
  while (pending.length > 0) {
    const name = pending.shift()
    if (name === undefined) break
    if (current.kind !== "directory") return Either.left({ _tag: "WrongKind", path: current.path, expected: "directory" })
    if (name === "..") {
      // `current` is a real path, so its lexical parent is its real parent.
      const parent = entryAt(Path.dirname(current.path))
      if (Either.isLeft(parent)) return Either.left(parent.left)
      current = parent.right
      continue
    }
    const found = entryAt(Path.join(current.path, name))
    if (Either.isLeft(found)) return Either.left(found.left)
    const entry = found.right
    steps.push({ directory: current, entry })
    if (entry.kind !== "symlink") {
      current = entry
      continue
    }
    if (++symlinks > maxSymlinks) return Either.left({ _tag: "SymlinkLoop", path: entry.path })
    let target: string
    try {
      target = Fs.readlinkSync(entry.path)
    } catch (error) {
      return Either.left({ _tag: "Unreadable", path: entry.path, detail: errorText(error) })
    }
    pending.unshift(...components(target))
    if (target.startsWith("/")) current = root.right
  }
  return Either.right({ steps, target: current })
}

/**
 * Checks `file` by the rule for the host's user; succeeds with its real path. Every failure names
 * the file as given, its real path and the culprit.
 */
export const checkFileTrusted = (
  file: string,
  expected: "file" | "directory" = "file"
): Effect.Effect<string, UntrustedFile> =>
  Effect.suspend(() => {
    const walked = walkPath(file)
    if (Either.isLeft(walked)) return Effect.fail(new UntrustedFile({ file, distrust: walked.left }))
    const realPath = walked.right.target.path
    const distrust = judgeWalk(walked.right, expected, hostTrustedUids())
    return distrust === undefined ? Effect.succeed(realPath) : Effect.fail(new UntrustedFile({ file, realPath, distrust }))
  })

/** The interpreter named by a `#!` line at the start of `file`, when it has one and it can be read. */
const interpreterOf = (file: string): string | undefined => {
  let head: Buffer
  try {
    const fd = Fs.openSync(file, "r")
    try {
      head = Buffer.alloc(256)
      head = head.subarray(0, Fs.readSync(fd, head, 0, head.length, 0))
    } finally {
      Fs.closeSync(fd)
    }
  } catch {
    // An execute-only file cannot be a script (the interpreter must read it): nothing more to check.
    return undefined
  }
  if (head[0] !== 0x23 || head[1] !== 0x21) return undefined
  const line = head.subarray(2).toString("latin1").split("\n")[0] ?? ""
  const [interpreter] = line.trim().split(/[ \t]+/)
  return interpreter !== undefined && interpreter.startsWith("/") ? interpreter : undefined
}

/**
 * Checks an executable and, when it is a script, the interpreter its `#!` line names (nested up to
 * the kernel's depth), since the kernel runs that too. Succeeds with the executable's real path.
 */
export const checkExecutableTrusted = (executable: string): Effect.Effect<string, UntrustedFile> =>
  Effect.flatMap(checkFileTrusted(executable), (realPath) => {
    const interpreters = (script: string, depth: number): Effect.Effect<void, UntrustedFile> => {
      const interpreter = depth < maxInterpreterDepth ? interpreterOf(script) : undefined
      if (interpreter === undefined) return Effect.void
      return checkFileTrusted(interpreter).pipe(
        Effect.mapError((error) =>
          new UntrustedFile({
            file: error.file,
            ...(error.realPath === undefined ? {} : { realPath: error.realPath }),
            distrust: error.distrust,
            interpreterOf: executable
          })
        ),
        Effect.flatMap((real) => interpreters(real, depth + 1))
      )
    }
    return Effect.as(interpreters(realPath, 0), realPath)
  })
