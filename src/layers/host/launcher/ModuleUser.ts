/**
 * The unprivileged user a `module-restricted` child runs as on a root host: looked up (NSS, through
 * `getent`), the default one created when missing, and what that user can reach — an executable it
 * can run (every directory on the way searchable, the file executable, by that user) and its own
 * working directory (handed over with `chown`).
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { defaultModuleUser } from "../../../services/host/ProcessLauncher.js"
import { errorText } from "../../../services/system/ErrorDetails.js"

/** A local user a child can run as. */
export interface ModuleUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** Bound on each `getent` and `useradd`. */
const toolTimeoutMs = 10_000

const lookup = (name: string): ModuleUser | undefined => {
  const found = spawnSync("getent", ["passwd", name], { encoding: "utf8", timeout: toolTimeoutMs })
  if (found.status !== 0) return undefined
  const [, , uid, gid] = found.stdout.trim().split(":")
  return uid === undefined || gid === undefined ? undefined : { name, uid: Number(uid), gid: Number(gid) }
}

/**
 * The user `name`: looked up, and when it is the default `corral-module` and missing, created as a
 * system user with its own group, no home and no login shell. Fails (a sentence naming the user and
 * what to do) for a missing user other than the default, a failed `useradd`, or a user with uid 0.
 */
export const resolveModuleUser = (name: string): Effect.Effect<ModuleUser, string> =>
  Effect.suspend(() => {
    let user = lookup(name)
    if (user === undefined && name === defaultModuleUser) {
      const created = spawnSync(
        "useradd",
        ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        { encoding: "utf8", timeout: toolTimeoutMs }
      )
      user = lookup(name)
      if (user === undefined) {
        const detail = created.error?.message ?? (created.stderr.trim() || `exit ${created.status ?? created.signal}`)
        return Effect.fail(`cannot create the module user "${name}" (useradd: ${detail}); create it or set run_as`)
      }
    }
    if (user === undefined) return Effect.fail(`run_as user "${name}" does not exist; create it or pick another run_as`)
    if (user.uid === 0) return Effect.fail(`run_as user "${name}" has uid 0; a restricted module must run unprivileged`)
    return Effect.succeed(user)
  })

/** Whether `user` (no supplementary groups) has permission `bit` (1 = x, 4 = r) on something with `stat`. */
const permits = (stat: Fs.Stats, user: ModuleUser, bit: number): boolean => {
  const shift = stat.uid === user.uid ? 6 : stat.gid === user.gid ? 3 : 0
  return ((stat.mode >> shift) & bit) !== 0
}

/** The first directory on the way to `file` that `user` cannot search, if any (paths as given and resolved). */
const blockedDirectory = (file: string, user: ModuleUser): string | undefined => {
  const real = Fs.realpathSync(file)
  for (const path of new Set([file, real])) {
    for (let dir = Path.dirname(path); ; dir = Path.dirname(dir)) {
      if (!permits(Fs.statSync(dir), user, 1)) return dir
      if (dir === Path.dirname(dir)) break
    }
  }
  return undefined
}

/**
 * Why `user` cannot run the (existing, host-executable) `file`, or `undefined` when it can: a directory
 * on the way it cannot search (named with its mode), or the file's own mode.
 */
export const whyNotExecutableBy = (file: string, user: ModuleUser): string | undefined => {
  try {
    const blocked = blockedDirectory(file, user)
    if (blocked !== undefined) {
      const mode = (Fs.statSync(blocked).mode & 0o7777).toString(8).padStart(4, "0")
      return `user "${user.name}" cannot search ${blocked} (mode ${mode})`
    }
    const stat = Fs.statSync(file)
    return permits(stat, user, 1)
      ? undefined
      : `user "${user.name}" may not execute ${file} (mode ${(stat.mode & 0o7777).toString(8).padStart(4, "0")})`
  } catch (error) {
    return `cannot check ${file} for user "${user.name}": ${errorText(error)}`
  }
}

/** Hands the child's own directory to `user` (owner, mode 0700): the only place it may write. */
export const handOver = (dir: string, user: ModuleUser): Effect.Effect<void, string> =>
  Effect.try({
    try: () => {
      Fs.chownSync(dir, user.uid, user.gid)
      Fs.chmodSync(dir, 0o700)
    },
    catch: (error) => `cannot hand ${dir} to user "${user.name}": ${errorText(error)}`
  })
