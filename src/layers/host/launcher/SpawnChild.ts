/**
 * Spawns one child through `node:child_process.spawn`: wrapped (see `SandboxArgv`), with a clean
 * environment, leading its own process group, all three pipes open. Under a PID namespace the pid is
 * that of the wrapper leading the group (`unshare`), and the exit is the command's (see `exitThroughInit`).
 */
// Plain spawn rather than @effect/platform Command: Command's kill and scope finalizer wait for exit
// without a bound and extend the host's environment by default; here every wait has a deadline.
import { type ChildProcess, spawn } from "node:child_process"
import type { Readable, Writable } from "node:stream"
import { Deferred, Effect, Exit } from "effect"
import type { ExitInfo, LaunchError, LaunchSpec } from "../../../services/host/ProcessLauncher.js"
import { errorText } from "../../../services/system/ErrorDetails.js"
import { childEnvironment } from "./ChildEnvironment.js"
import { exitThroughInit } from "./PidIsolation.js"
import type { GroupLeader } from "./ProcessGroup.js"
import { type LaunchTools, type SwitchedUser, wrapCommand } from "./SandboxArgv.js"
import { spawnError } from "./SpawnChecks.js"

/** The three pipes of a started child. */
export interface ChildPipes {
  readonly stdin: Writable
  readonly stdout: Readable
  readonly stderr: Readable
}

/** A started child: its pipes, its pid and its exit. */
export interface Spawned extends GroupLeader {
  readonly child: ChildPipes
}

/**
 * Spawns `spec` (already resolved to `executable`; as `user` when given; for `module-isolated` in a view
 * holding `moduleDirs` read-only and its `cwd` writable) as a process-group leader and waits for Node's
 * `spawn` or `error` event. Run it uninterruptibly and register the stop right after.
 */
export const spawnChild = (
  spec: LaunchSpec,
  executable: string,
  cwd: string | undefined,
  tools: LaunchTools,
  user?: SwitchedUser,
  moduleDirs?: ReadonlyArray<string>
): Effect.Effect<Spawned, LaunchError> =>
  Effect.flatMap(Deferred.make<ExitInfo>(), (exited) =>
    Effect.async<Spawned, LaunchError>((resume) => {
      // A view always gets its cwd (its own, checked in `prepare`); a plain user switch only an owned one.
      const ownsDir = moduleDirs !== undefined || (user !== undefined && spec.ownsCwd === true)
      const own = {
        ...(user === undefined ? {} : { user }),
        ...(ownsDir && cwd !== undefined ? { ownDir: cwd } : {}),
        ...(moduleDirs === undefined ? {} : { moduleDirs })
      }
      const command = wrapCommand({ ...spec, executable, ...own }, tools)
      const via = command.file === executable ? "" : ` (through ${command.file})`
      let child: ChildProcess
      try {
        // All three piped (a long-lived child's stdin is ended at once). A held socket is passed as a stdio
        // entry by its descriptor, which libuv dup2s to fd 3 in the child (and clears close-on-exec there).
        child = spawn(command.file, command.args, {
          ...(cwd === undefined ? {} : { cwd }),
          env: childEnvironment(spec.env),
          detached: true,
          stdio: spec.listenFd === undefined ? "pipe" : ["pipe", "pipe", "pipe", spec.listenFd]
        })
      } catch (error) {
        resume(Effect.fail(spawnError(spec, `spawn of "${executable}"${via} failed: ${errorText(error)}`)))
        return
      }
      const { stdin, stdout, stderr } = child
      // Never null: all three are "pipe" (only a stdio entry of another kind leaves one null).
      if (stdin === null || stdout === null || stderr === null) {
        resume(Effect.fail(spawnError(spec, `spawn of "${executable}"${via} gave no pipes`)))
        return
      }
      // A child that never reads stdin makes our write fail with EPIPE: its exit tells the story.
      stdin.on("error", () => undefined)
      child.once("exit", (code, signal) =>
        Deferred.unsafeDone(exited, Exit.succeed(command.namespaced ? exitThroughInit(code, signal) : { code, signal })))
      const onSpawn = () => {
        child.off("error", onError)
        // Later errors come only from `child.kill`, which is never used (signals go to the group).
        child.on("error", () => undefined)
        const pid = child.pid
        resume(
          pid === undefined
            ? Effect.fail(spawnError(spec, `spawn of "${executable}"${via} gave no pid`))
            : Effect.succeed({ child: { stdin, stdout, stderr }, pid, exited, namespaced: command.namespaced })
        )
      }
      const onError = (error: Error) => {
        child.off("spawn", onSpawn)
        resume(Effect.fail(spawnError(spec, `spawn of "${executable}"${via} failed: ${error.message}`)))
      }
      child.once("spawn", onSpawn)
      child.once("error", onError)
    }))
