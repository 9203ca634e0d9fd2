/**
 * Checks made before a spawn, so that a bad launch fails here, by name, with what to fix: the executable
 * (resolved as `execvp` would, and runnable by the user the child runs as) and the working directory
 * (or a private one for `module-restricted`, handed to that user).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { LaunchError, type LaunchSpec } from "../../../services/host/ProcessLauncher.js"
import { errorText } from "../../../services/system/ErrorDetails.js"
import { privateDirectorySync } from "../../system/PrivateDirectory.js"
import { childEnvironment } from "./ChildEnvironment.js"
import { handOver, type ModuleUser, whyNotExecutableBy } from "./ModuleUser.js"

/** What a path is, as something to execute. */
export type ExecutableStatus = "ok" | "missing" | "not_executable"

/** Whether `file` exists and is an executable regular file (synchronous: one stat, one access). */
export const executableStatus = (file: string): ExecutableStatus => {
  const stat = Fs.statSync(file, { throwIfNoEntry: false })
  if (stat === undefined) return "missing"
  if (!stat.isFile()) return "not_executable"
  try {
    Fs.accessSync(file, Fs.constants.X_OK)
    return "ok"
  } catch {
    return "not_executable"
  }
}

/** A `Spawn` failure of `spec`, its message naming the child: `cannot start "<name>": <detail>`. */
export const spawnError = (spec: LaunchSpec, detail: string) =>
  new LaunchError({ name: spec.name, reason: "Spawn", message: `cannot start "${spec.name}": ${detail}` })

/**
 * Resolves the executable as `execvp` would (a name with a `/` against `cwd`, a bare name through the
 * child's PATH) so a missing one fails here, by name, rather than as the wrapper exiting 127. When the
 * child runs as `user`, only what that user can run counts: a bare name skips PATH entries it cannot
 * reach (root's pyenv shims in a 0700 home, say) and finds the system one.
 */
export const resolveExecutable = (
  spec: LaunchSpec,
  base: string,
  user?: ModuleUser
): Effect.Effect<string, LaunchError> =>
  Effect.suspend(() => {
    const executable = spec.executable
    const runnable = (file: string) => (user === undefined ? undefined : whyNotExecutableBy(file, user))
    if (executable.includes("/")) {
      const file = Path.resolve(base, executable)
      const status = executableStatus(file)
      const denied = status === "ok" ? runnable(file) : undefined
      return status === "ok" && denied === undefined
        ? Effect.succeed(file)
        : Effect.fail(spawnError(
          spec,
          status === "missing"
            ? `executable "${executable}" does not exist (looked at ${file})`
            : status === "not_executable"
            ? `executable "${executable}" (${file}) is not an executable file; check its mode`
            : `executable "${executable}" (${file}) cannot be run by the module user: ${denied}`
        ))
    }
    const searchPath = childEnvironment(spec.env).PATH ?? ""
    let notExecutable: string | undefined
    let denied: string | undefined
    for (const dir of searchPath.split(":")) {
      if (dir === "") continue
      const file = Path.resolve(base, dir, executable)
      const status = executableStatus(file)
      if (status === "not_executable") notExecutable ??= file
      if (status !== "ok") continue
      const why = runnable(file)
      if (why === undefined) return Effect.succeed(file)
      denied ??= `${file}: ${why}`
    }
    return Effect.fail(spawnError(
      spec,
      denied !== undefined
        ? `executable "${executable}": no copy in PATH=${searchPath} can be run by the module user (${denied}); ` +
          "install it where that user can run it (e.g. /usr/bin) or give an absolute path"
        : notExecutable === undefined
        ? `executable "${executable}" not found in PATH=${searchPath}; give an absolute path or set env.PATH`
        : `executable "${executable}" found at ${notExecutable} but it is not executable; check its mode`
    ))
  })

/**
 * The child's working directory: `spec.cwd` (checked; handed to `user` when `spec.ownsCwd`), or for
 * `module-restricted` and `module-isolated` a private 0700 directory under the OS temp dir (owned by `user` when given),
 * removed when the scope closes; otherwise the host's.
 */
export const workingDirectory = (
  spec: LaunchSpec,
  user?: ModuleUser
): Effect.Effect<string | undefined, LaunchError, Scope.Scope> => {
  const giveTo = (dir: string) =>
    user === undefined ? Effect.void : Effect.mapError(handOver(dir, user), (detail) => spawnError(spec, detail))
  if (spec.cwd !== undefined) {
    const cwd = spec.cwd
    return Fs.statSync(cwd, { throwIfNoEntry: false })?.isDirectory() === true
      ? Effect.as(spec.ownsCwd === true ? giveTo(cwd) : Effect.void, cwd)
      : Effect.fail(spawnError(spec, `working directory "${cwd}" does not exist or is not a directory`))
  }
  if (spec.sandbox !== "module-restricted" && spec.sandbox !== "module-isolated") return Effect.succeed(undefined)
  const privateDir = Effect.acquireRelease(
    Effect.try({
      try: () => {
        const safeName = spec.name.replace(/[^A-Za-z0-9._-]/g, "_")
        return privateDirectorySync(Fs.mkdtempSync(Path.join(Os.tmpdir(), `corral-${safeName}-`)))
      },
      catch: (error) => spawnError(spec, `cannot create a private working directory: ${errorText(error)}`)
    }),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  return Effect.tap(privateDir, giveTo)
}
