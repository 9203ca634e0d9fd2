/**
 * PID namespaces for children: whether this machine gives them (root, or unprivileged user namespaces),
 * the `unshare` options, the tiny init that is the namespace's first process, and what an exit through
 * that init means. When the init ends, or the host dies (pdeathsig on `unshare`, `--kill-child` on the
 * init), the kernel kills everything left in the namespace: `setsid()` and double forks included.
 */
import { spawnSync } from "node:child_process"
import * as Os from "node:os"
import { executableStatus } from "./SpawnChecks.js"

/** How children enter their own PID namespace here. */
export interface NamespaceTool {
  readonly unshare: string
  /** GNU `env`, which the init uses to give the child default signal dispositions. */
  readonly env: string
  /** Non-root host: the PID namespace needs a user namespace that maps the host's user to itself. */
  readonly userNamespace: boolean
}

/** Whether children get PID namespaces here, and if not, why not (for the operator). */
export type NamespaceSupport =
  | { readonly _tag: "Available"; readonly tool: NamespaceTool }
  | { readonly _tag: "Unavailable"; readonly reason: string }

/** How long the start-up probe may take before namespaces count as unavailable. */
export const probeTimeoutMs = 5_000

/**
 * `unshare` options: a PID namespace whose first process is killed when `unshare` dies (`--kill-child`),
 * with its own `/proc` (`--mount-proc`, which implies a private mount namespace).
 */
export const unshareOptions = (tool: NamespaceTool): ReadonlyArray<string> => [
  ...(tool.userNamespace ? ["--user", "--map-current-user"] : []),
  "--pid",
  "--fork",
  "--kill-child",
  "--mount-proc",
  "--"
]

/**
 * The init script run by `/bin/sh` as the namespace's first process. The real command must not be that
 * process: PID 1 of a namespace ignores every signal it has no handler for, so a module's SIGTERM would
 * be lost. The command runs as its child (in the host's process group, so the group's TERM reaches it),
 * gets stdin through fd 9 (an asynchronous command's stdin is /dev/null otherwise) and default signal
 * dispositions (`env --default-signal`: the shell ignores INT and QUIT for asynchronous commands); the
 * init waits for it and exits with its status, which `unshare` passes on. A TERM is sent only once the
 * command runs (see `ProcessGroup`): before its exec the forked shell would swallow it.
 */
export const initScript = (env: string, prelude: string): string =>
  `${prelude}exec 9<&0; ${env} --default-signal -- "$@" 0<&9 9<&- & exec 0<&- 9<&-; wait $!`

const signalNames = new Map<number, string>(Object.entries(Os.constants.signals).map(([name, number]) => [number, name]))

/**
 * The child's exit as the host should report it, from the exit of `unshare` (which is the init's).
 * The init cannot die by a signal itself, so a command killed by signal N reaches the host as code
 * 128+N (as under any shell or container init); that is turned back into the signal. A command that
 * exits with such a code on purpose is reported as killed by that signal.
 */
export const exitThroughInit = (
  code: number | null,
  signal: string | null
): { readonly code: number | null; readonly signal: string | null } => {
  if (code === null || code <= 128) return { code, signal }
  const name = signalNames.get(code - 128)
  return name === undefined ? { code, signal } : { code: null, signal: name }
}

const firstExecutable = (candidates: ReadonlyArray<string>): string | undefined =>
  candidates.find((candidate) => executableStatus(candidate) === "ok")

/**
 * Probes once whether children can get a PID namespace here: runs the exact wrapper (`unshare` options
 * and init) around `true`, bounded by `probeTimeoutMs`. Root needs no user namespace; a non-root host
 * needs unprivileged user namespaces (`kernel.unprivileged_userns_clone`, `user.max_user_namespaces`).
 */
export const probeNamespaces = (shell: string): NamespaceSupport => {
  if (process.platform !== "linux") return { _tag: "Unavailable", reason: "PID namespaces are Linux-only" }
  const unshare = firstExecutable(["/usr/bin/unshare", "/bin/unshare"])
  if (unshare === undefined) return { _tag: "Unavailable", reason: "unshare (util-linux) not found" }
  const env = firstExecutable(["/usr/bin/env", "/bin/env"])
  if (env === undefined) return { _tag: "Unavailable", reason: "env (coreutils) not found" }
  const tool: NamespaceTool = { unshare, env, userNamespace: process.getuid?.() !== 0 }
  const probe = spawnSync(
    unshare,
    [...unshareOptions(tool), shell, "-c", initScript(env, ""), "corral-init", "true"],
    { encoding: "utf8", timeout: probeTimeoutMs, stdio: ["ignore", "ignore", "pipe"], env: { PATH: "/usr/bin:/bin" } }
  )
  if (probe.status === 0) return { _tag: "Available", tool }
  const detail = probe.error?.message ?? (probe.stderr.trim() || `exit ${probe.status ?? probe.signal}`)
  return {
    _tag: "Unavailable",
    reason: tool.userNamespace
      ? `unprivileged user namespaces are not available (${detail}); run the host as root or enable them`
      : `unshare --pid failed (${detail})`
  }
}
