/**
 * The argv a child really runs under, built purely: `setpriv --pdeathsig KILL` (it dies with the host),
 * where the machine allows `unshare` into its own PID namespace with a tiny init (nothing it starts
 * outlives it), and for `module-restricted` no_new_privs, another user without capabilities (root
 * hosts), `prlimit` limits and umask 077; `module-isolated` adds a private mount view (`bwrap`, see
 * `IsolatedView`). Also finds those tools at start and says what is missing.
 */
import * as Fs from "node:fs"
import { Effect } from "effect"
import type { Isolation, LaunchSpec } from "../../../services/host/ProcessLauncher.js"
import { type BwrapTool, bwrapMissing, bwrapOptions, findBwrap } from "./IsolatedView.js"
import { initScript, type NamespaceSupport, type NamespaceTool, probeNamespaces, unshareOptions } from "./PidIsolation.js"
import { executableStatus } from "./SpawnChecks.js"

/** `module-restricted`: the open-files limit (soft and hard). */
export const sandboxOpenFiles = 1024

/** `module-restricted`: the address-space limit, 4 GiB. */
export const sandboxAddressSpaceBytes = 4 * 1024 * 1024 * 1024

/**
 * Where a child that runs as another user under a PID (and so mount) namespace finds its own directory:
 * bind-mounted over `/media` in its private mount view, since the real path usually crosses directories
 * it may not search (a 0700 data dir, root's home). Not `/tmp`: the module's own code (a package
 * checked out under /tmp, as CI does) must stay visible; `/media` is an empty mount point on Debian.
 */
export const ownDirMountPoint = "/media"

/** Helper programs the launcher wraps children with; an absent one (`undefined`) is skipped. */
export interface LaunchTools {
  readonly setpriv: string | undefined
  readonly prlimit: string | undefined
  /** util-linux `mount`, for the bind of a switched child's own directory. */
  readonly mount: string | undefined
  /** Whether `ownDirMountPoint` is a directory here (the bind needs one). */
  readonly ownDirMountPointExists: boolean
  readonly shell: string
  /** PID namespaces for every child; `undefined`: process groups only (warned at start, shown to the operator). */
  readonly namespaces: NamespaceTool | undefined
  /** Whether the host runs as root, so `module-restricted` can switch to an unprivileged user. */
  readonly root: boolean
  /** bubblewrap, for `module-isolated`; `undefined`: not installed (such a module fails to launch). */
  readonly bwrap: BwrapTool | undefined
}

/** The user a child is switched to (by numbers: no lookup happens in the child). */
export interface SwitchedUser {
  readonly uid: number
  readonly gid: number
}

/** What a wrapped child is: the program and arguments passed to `spawn`, and whether an init sits between. */
export interface WrappedCommand {
  readonly file: string
  readonly args: ReadonlyArray<string>
  /** The child runs under the namespace init: its exit reaches the host as the init's (see `exitThroughInit`). */
  readonly namespaced: boolean
}

/**
 * The last step before a child that gets a held socket (`LaunchSpec.listenFd`): `LISTEN_PID` is the pid
 * that runs the module's code, which only that process can know (under a PID namespace it is the
 * namespace's, not the host's view), so a shell exports its own `$$` and execs the command in place.
 */
export const listenPidScript = (keepPwd: boolean): string =>
  `${keepPwd ? "" : "unset PWD; "}LISTEN_PID=$$; export LISTEN_PID; exec "$@"`

/** Whether a child switched to another user gets its own directory at `ownDirMountPoint` with `tools`. */
export const mountsOwnDir = (tools: LaunchTools): boolean =>
  tools.namespaces !== undefined && tools.mount !== undefined && tools.setpriv !== undefined && tools.ownDirMountPointExists

/** Profiles with the limits of `module-restricted` (user switch on root, no_new_privs, rlimits, umask 077). */
export const restrictedProfile = (sandbox: LaunchSpec["sandbox"]): boolean =>
  sandbox === "module-restricted" || sandbox === "module-isolated"

/** Why `module-isolated` cannot be given here with `tools`, or `undefined` when it can. */
export const isolatedUnavailable = (tools: LaunchTools): string | undefined =>
  tools.bwrap === undefined
    ? bwrapMissing
    : tools.namespaces === undefined
    ? "sandbox \"module-isolated\" needs PID namespaces, which this machine does not give (see isolation in corral config show)"
    : undefined

const isDirectory = (path: string): boolean => {
  try {
    return Fs.statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** How far children are contained with `tools`. */
export const isolationOf = (tools: LaunchTools): Isolation =>
  tools.namespaces === undefined ? "process-group-only" : "pid-namespace"

/**
 * Builds the real argv (pure), outermost first: `setpriv --pdeathsig KILL [--no-new-privs] --`, then
 * `unshare --pid --fork --kill-child --mount-proc --` with `setpriv --pdeathsig KILL --reuid --regid
 * --clear-groups --inh-caps=-all --bounding-set=-all --` inside it when `user` is given (the uid change
 * clears the parent-death signal, so it is set again) — preceded, as root, by the bind of `ownDir` over
 * `ownDirMountPoint` — then for `module-restricted` `prlimit --nofile --as --`, then `sh -c` (the namespace init, or
 * for `module-restricted` alone `umask 077; exec "$@"`), and innermost, for a child given a held socket,
 * the `listenPidScript` shell.
 *
 * `module-isolated` (given `moduleDirs` and `ownDir`, bwrap and namespaces): `bwrap` takes the place of
 * the bind and of the init, outside the user switch: it runs as root inside the namespace, builds the view
 * and, being the namespace's PID 1 (which no TERM from the host reaches), waits for the command and
 * exits with its status (128+N for signal N, as the init does); inside it `umask 077; exec "$@"`.
 */
export const wrapCommand = (
  command: Pick<LaunchSpec, "executable" | "args" | "sandbox" | "env" | "listenFd"> & {
    readonly user?: SwitchedUser
    /** The child's own directory (its cwd), mounted at `ownDirMountPoint` when `user` is given or in a view. */
    readonly ownDir?: string
    /** `module-isolated`: the directories the view holds read-only (see `IsolatedView.moduleDirsOf`). */
    readonly moduleDirs?: ReadonlyArray<string>
  },
  tools: LaunchTools
): WrappedCommand => {
  const restricted = restrictedProfile(command.sandbox)
  const view = command.sandbox === "module-isolated" && tools.bwrap !== undefined && tools.namespaces !== undefined &&
      command.moduleDirs !== undefined && command.ownDir !== undefined
    ? { tool: tools.bwrap, moduleDirs: command.moduleDirs, workDir: command.ownDir }
    : undefined
  const user = command.user
  let argv: ReadonlyArray<string> = command.args
  let file = command.executable
  const prepend = (program: string, ...options: ReadonlyArray<string>) => {
    argv = [...options, file, ...argv]
    file = program
  }
  // The shell exports PWD on its own; unset it so the environment stays exactly PATH + env.
  const prelude = `${restricted ? "umask 077; " : ""}${"PWD" in command.env ? "" : "unset PWD; "}`
  if (command.listenFd !== undefined) prepend(tools.shell, "-c", listenPidScript("PWD" in command.env), "corral-listen")
  if (tools.namespaces !== undefined && view === undefined) {
    prepend(tools.shell, "-c", initScript(tools.namespaces.env, prelude), "corral-init")
  } else if (restricted) prepend(tools.shell, "-c", `${prelude}exec "$@"`, "sh")
  if (restricted && tools.prlimit !== undefined) {
    prepend(tools.prlimit, `--nofile=${sandboxOpenFiles}:${sandboxOpenFiles}`, `--as=${sandboxAddressSpaceBytes}`, "--")
  }
  const switchUser = user === undefined
    ? []
    : [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
  if (tools.namespaces !== undefined) {
    if (tools.setpriv !== undefined && switchUser.length > 0) prepend(tools.setpriv, "--pdeathsig", "KILL", ...switchUser, "--")
    if (view !== undefined) {
      prepend(view.tool.bwrap, ...bwrapOptions(view.tool, { ...view, mountPoint: ownDirMountPoint }))
    } else if (switchUser.length > 0 && command.ownDir !== undefined && mountsOwnDir(tools)) {
      const bind = `${tools.mount} --bind -- "$0" ${ownDirMountPoint} && cd ${ownDirMountPoint} && exec "$@"`
      prepend(tools.shell, "-c", bind, command.ownDir)
    }
    prepend(tools.namespaces.unshare, ...unshareOptions(tools.namespaces))
  }
  if (tools.setpriv !== undefined) {
    const outerSwitch = tools.namespaces === undefined ? switchUser : []
    prepend(tools.setpriv, "--pdeathsig", "KILL", ...(restricted ? ["--no-new-privs"] : []), ...outerSwitch, "--")
  }
  return { file, args: argv, namespaced: tools.namespaces !== undefined }
}

const firstExecutable = (candidates: ReadonlyArray<string>): string | undefined =>
  candidates.find((candidate) => executableStatus(candidate) === "ok")

/** The tools found here and what the operator must be told about what is missing; nothing is logged. */
export const findTools = (): { readonly tools: LaunchTools; readonly namespaces: NamespaceSupport } => {
  const linux = process.platform === "linux"
  const shell = "/bin/sh"
  const namespaces = probeNamespaces(shell)
  return {
    tools: {
      setpriv: linux ? firstExecutable(["/usr/bin/setpriv", "/bin/setpriv"]) : undefined,
      prlimit: linux ? firstExecutable(["/usr/bin/prlimit", "/bin/prlimit"]) : undefined,
      mount: linux ? firstExecutable(["/usr/bin/mount", "/bin/mount"]) : undefined,
      ownDirMountPointExists: isDirectory(ownDirMountPoint),
      shell,
      namespaces: namespaces._tag === "Available" ? namespaces.tool : undefined,
      root: process.getuid?.() === 0,
      bwrap: findBwrap()
    },
    namespaces
  }
}

/** Finds the tools and logs, once, each missing one and what children lose without it. */
export const detectTools: Effect.Effect<LaunchTools> = Effect.gen(function*() {
  const { namespaces, tools } = findTools()
  if (tools.setpriv === undefined) {
    yield* Effect.logWarning(
      "setpriv not found (util-linux): children run unwrapped and outlive the host if it is SIGKILLed; " +
        "sandbox \"module-restricted\" also loses no_new_privs and cannot switch users"
    )
  }
  if (process.platform === "linux" && tools.prlimit === undefined) {
    yield* Effect.logWarning(
      "prlimit not found (util-linux): sandbox \"module-restricted\" runs without its open-files and memory limits"
    )
  }
  if (namespaces._tag === "Unavailable") {
    yield* Effect.logWarning(
      `isolation: process-group-only — no PID namespace for children: ${namespaces.reason}. A process a ` +
        "module or backend starts that leaves its process group (setsid, double fork) can outlive its " +
        "component and the host"
    )
  }
  if (process.platform === "linux" && tools.bwrap === undefined) {
    yield* Effect.logWarning(`${bwrapMissing}; components with that profile fail to launch`)
  }
  if (!tools.root) {
    yield* Effect.logWarning(
      "the host is not root: sandbox \"module-restricted\" cannot run modules as another user; they run as " +
        "the host's user, with no_new_privs, rlimits and umask 077 only, and can read what that user can"
    )
  }
  return tools
})
