/**
 * The argv a child really runs under: `setpriv --pdeathsig KILL` (it dies with the host) and, for the
 * `module-restricted` profile, no_new_privs, `prlimit` limits and a `umask 077` shell; built purely.
 */
import { Effect } from "effect"
import type { LaunchSpec } from "../../../services/host/ProcessLauncher.js"
import { executableStatus } from "./SpawnChecks.js"

/** `module-restricted`: the open-files limit (soft and hard). */
export const sandboxOpenFiles = 1024

/** `module-restricted`: the address-space limit, 4 GiB. */
export const sandboxAddressSpaceBytes = 4 * 1024 * 1024 * 1024

/** Helper programs the launcher wraps children with; an absent one (`undefined`) is skipped. */
export interface LaunchTools {
  readonly setpriv: string | undefined
  readonly prlimit: string | undefined
  readonly shell: string
}

/** The program and arguments actually passed to `spawn`. */
export interface WrappedCommand {
  readonly file: string
  readonly args: ReadonlyArray<string>
}

/**
 * Builds the real argv (pure): `setpriv --pdeathsig KILL [--no-new-privs] --`, then for
 * `module-restricted` `prlimit --nofile --as --` and `sh -c 'umask 077; exec "$@"'`, then the command.
 */
export const wrapCommand = (
  command: Pick<LaunchSpec, "executable" | "args" | "sandbox" | "env">,
  tools: LaunchTools
): WrappedCommand => {
  const restricted = command.sandbox === "module-restricted"
  let argv: ReadonlyArray<string> = command.args
  let file = command.executable
  const prepend = (program: string, ...options: ReadonlyArray<string>) => {
    argv = [...options, file, ...argv]
    file = program
  }
  if (restricted) {
    // The shell exports PWD on its own; unset it so the environment stays exactly PATH + env.
    const script = "PWD" in command.env ? "umask 077; exec \"$@\"" : "umask 077; unset PWD; exec \"$@\""
    prepend(tools.shell, "-c", script, "sh")
    if (tools.prlimit !== undefined) {
      prepend(
        tools.prlimit,
        `--nofile=${sandboxOpenFiles}:${sandboxOpenFiles}`,
        `--as=${sandboxAddressSpaceBytes}`,
        "--"
      )
    }
  }
  if (tools.setpriv !== undefined) {
    prepend(tools.setpriv, "--pdeathsig", "KILL", ...(restricted ? ["--no-new-privs"] : []), "--")
  }
  return { file, args: argv }
}

const firstExecutable = (candidates: ReadonlyArray<string>): string | undefined =>
  candidates.find((candidate) => executableStatus(candidate) === "ok")

/** Finds `setpriv` and `prlimit` (Linux only) and the shell; an absent tool is logged once here. */
export const detectTools: Effect.Effect<LaunchTools> = Effect.gen(function*() {
  const linux = process.platform === "linux"
  const setpriv = linux ? firstExecutable(["/usr/bin/setpriv", "/bin/setpriv"]) : undefined
  const prlimit = linux ? firstExecutable(["/usr/bin/prlimit", "/bin/prlimit"]) : undefined
  if (setpriv === undefined) {
    yield* Effect.logWarning(
      "setpriv not found (util-linux): children run unwrapped and outlive the host if it is SIGKILLed; " +
        "sandbox \"module-restricted\" also loses no_new_privs"
    )
  }
  if (linux && prlimit === undefined) {
    yield* Effect.logWarning(
      "prlimit not found (util-linux): sandbox \"module-restricted\" runs without its open-files and memory limits"
    )
  }
  return { setpriv, prlimit, shell: "/bin/sh" }
})
