/**
 * File trust: whether a file the host runs or reads as a definition could have been written by
 * anyone but the host's user or root — the rule of OpenSSH's StrictModes and sudo. The walk of a
 * path (every directory from `/` down, symlinks followed) is gathered elsewhere; judging it is pure.
 *
 * The rule: every directory on the way and the file itself are owned by a trusted uid and are not
 * writable by group or others. One exception: a sticky directory owned by a trusted uid (like
 * `/tmp`, mode 1777) may be passed *through* when the entry met beneath it is owned by a trusted uid,
 * because the sticky bit stops others from renaming or removing that entry. The file itself directly
 * in such a directory is refused, as issue 8 asks: a shared directory is no place for what runs.
 */
import { Schema } from "effect"

/** What an entry met on the walk is. */
export type EntryKind = "directory" | "file" | "symlink" | "other"

/** One entry met while walking a path: where it is, who owns it, its mode bits (with the sticky bit). */
export interface PathEntry {
  readonly path: string
  readonly uid: number
  readonly mode: number
  readonly kind: EntryKind
}

/** One step of a walk: `entry` was found in `directory`. Both paths are real (no symlink in them). */
export interface WalkStep {
  readonly directory: PathEntry
  readonly entry: PathEntry
}

/** A walk from `/` to the resolved file: every step in order, symlinks included, and where it ended. */
export interface PathWalk {
  readonly steps: ReadonlyArray<WalkStep>
  readonly target: PathEntry
}

/** Why a file is not trusted; `path` is the culprit: the file, one of its directories or a symlink. */
export const Distrust = Schema.Union(
  Schema.TaggedStruct("WritableByOthers", { path: Schema.String, mode: Schema.Number }),
  Schema.TaggedStruct("WritableByGroup", { path: Schema.String, mode: Schema.Number }),
  Schema.TaggedStruct("OwnedByOther", { path: Schema.String, uid: Schema.Number }),
  Schema.TaggedStruct("WrongKind", { path: Schema.String, expected: Schema.Literal("file", "directory") }),
  Schema.TaggedStruct("Missing", { path: Schema.String }),
  Schema.TaggedStruct("Unreadable", { path: Schema.String, detail: Schema.String }),
  Schema.TaggedStruct("SymlinkLoop", { path: Schema.String })
)
/** Why a file is not trusted. */
export type Distrust = typeof Distrust.Type

/** A file the host refuses to run or read: `file` as it was named, `realPath` when it was resolved. */
export class UntrustedFile extends Schema.TaggedError<UntrustedFile>()("UntrustedFile", {
  file: Schema.String,
  realPath: Schema.optional(Schema.String),
  distrust: Distrust,
  /** Set when `file` is the `#!` interpreter of this executable. */
  interpreterOf: Schema.optional(Schema.String)
}) {
  /** `<file>: <reason>; <what to do>`, e.g. `/srv/x/run.sh: writable by others (mode 0777); chmod go-w /srv/x/run.sh`. */
  override get message(): string {
    const shown = this.realPath === undefined || this.realPath === this.file ? this.file : `${this.file} (-> ${this.realPath})`
    const hint = distrustHint(this.distrust)
    const reason = `${shown}: ${distrustReason(this.distrust, this.realPath ?? this.file)}${hint === undefined ? "" : `; ${hint}`}`
    return this.interpreterOf === undefined ? reason : `${this.interpreterOf}: its #! interpreter ${reason}`
  }
}

/** A mode as `ls` would print its octal form: `0777`, `1777`. */
export const modeText = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, "0")

const stickyBit = 0o1000

/** Who besides the owner may write an entry with `mode`, if anyone. */
const writableBy = (mode: number): "others" | "group" | undefined =>
  (mode & 0o002) !== 0 ? "others" : (mode & 0o020) !== 0 ? "group" : undefined

/** The reason in words; `subject` is the file the reason is about (the culprit may be one of its directories). */
export const distrustReason = (distrust: Distrust, subject: string): string => {
  const where = (what: string) => (distrust.path === subject ? what : `in ${distrust.path}, which is ${what}`)
  switch (distrust._tag) {
    case "WritableByOthers":
      return where(`writable by others (mode ${modeText(distrust.mode)})`)
    case "WritableByGroup":
      return where(`writable by group (mode ${modeText(distrust.mode)})`)
    case "OwnedByOther":
      return where(`owned by uid ${distrust.uid}`)
    case "WrongKind":
      return distrust.path === subject ? `not a ${distrust.expected}` : `${distrust.path} is not a directory`
    case "Missing":
      return distrust.path === subject ? "does not exist" : `${distrust.path} does not exist`
    case "Unreadable":
      return `cannot inspect ${distrust.path}: ${distrust.detail}`
    case "SymlinkLoop":
      return `too many symlinks at ${distrust.path}`
  }
}

/** What to do about `distrust`, as one sentence, when the reason alone does not say it. */
export const distrustHint = (distrust: Distrust): string | undefined => {
  switch (distrust._tag) {
    case "WritableByOthers":
    case "WritableByGroup":
      return (distrust.mode & stickyBit) !== 0
        ? `keep it in a directory that only its owner can write, not in the shared ${distrust.path}`
        : `chmod go-w ${distrust.path}`
    case "OwnedByOther":
      return `only files and directories of the host's user or root are trusted: chown ${distrust.path} or move the file`
    case "WrongKind":
    case "Missing":
    case "Unreadable":
    case "SymlinkLoop":
      return undefined
  }
}

/**
 * Judges a walk (pure): the first distrusted entry from `/` down, or `undefined` when the file may be
 * run or read. `expected` is what the target must be; `trusted` the uids that may own anything.
 */
export const judgeWalk = (
  walk: PathWalk,
  expected: "file" | "directory",
  trusted: ReadonlyArray<number>
): Distrust | undefined => {
  const isTrusted = (entry: PathEntry) => trusted.includes(entry.uid)
  const last = walk.steps.length - 1
  for (const [index, { directory, entry }] of walk.steps.entries()) {
    if (!isTrusted(directory)) return { _tag: "OwnedByOther", path: directory.path, uid: directory.uid }
    const writers = writableBy(directory.mode)
    if (writers === undefined) continue
    // Passing through a shared sticky directory is safe only to an entry a trusted user owns that
    // is not the file itself: others cannot rename it away, and nothing else is read from there.
    const passable = (directory.mode & stickyBit) !== 0 && index < last && isTrusted(entry)
    if (!passable) {
      return writers === "others"
        ? { _tag: "WritableByOthers", path: directory.path, mode: directory.mode }
        : { _tag: "WritableByGroup", path: directory.path, mode: directory.mode }
    }
  }
  const target = walk.target
  if (target.kind !== expected) return { _tag: "WrongKind", path: target.path, expected }
  if (!isTrusted(target)) return { _tag: "OwnedByOther", path: target.path, uid: target.uid }
  switch (writableBy(target.mode)) {
    case "others":
      return { _tag: "WritableByOthers", path: target.path, mode: target.mode }
    case "group":
      return { _tag: "WritableByGroup", path: target.path, mode: target.mode }
    case undefined:
      return undefined
  }
}
