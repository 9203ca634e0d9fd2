/**
 * A second local user for trust-boundary tests: when the tests run as root, a system user
 * `corral-test-other` is created once (useradd) and its uid/gid returned; otherwise there is none,
 * and the caller skips its test with the printed reason. `runAs` runs a command as that user.
 */
import { execFileSync, spawnSync } from "node:child_process"

/** The second user's name. */
export const otherUserName = "corral-test-other"

/** A local user other than the one running the tests. */
export interface OtherUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

const lookup = (): OtherUser | undefined => {
  const found = spawnSync("id", ["-u", otherUserName], { encoding: "utf8" })
  if (found.status !== 0) return undefined
  const gid = Number(execFileSync("id", ["-g", otherUserName], { encoding: "utf8" }).trim())
  return { name: otherUserName, uid: Number(found.stdout.trim()), gid }
}

/** The second user, created if missing (root only); `{ skip }` names why there is none. */
export const otherUser = (): OtherUser | { readonly skip: string } => {
  if (process.getuid?.() !== 0) return { skip: "needs root to create a second local user (run the suite as root, as CI does)" }
  const existing = lookup()
  if (existing !== undefined) return existing
  const created = spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", otherUserName], { encoding: "utf8" })
  const user = lookup()
  return user ?? { skip: `useradd ${otherUserName} failed: ${created.stderr.trim() || `exit ${created.status}`}` }
}

/** Runs `command args` as `user` (setpriv, no supplementary groups); its stdout, stderr and exit status. */
export const runAs = (user: OtherUser, command: string, args: ReadonlyArray<string>, timeoutMs = 10_000) => {
  const result = spawnSync("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", command, ...args], {
    encoding: "utf8",
    timeout: timeoutMs
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}
