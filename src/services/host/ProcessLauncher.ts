/**
 * ProcessLauncher: starts host-owned children — each in its own process group and, where the machine
 * allows, its own PID namespace, dying with the host (`setpriv --pdeathsig KILL` on Linux), with a clean
 * environment, a sandbox profile, and stdout and stderr in a rotated log file — and stops them
 * TERM → grace → KILL, reporting only an empty group.
 */
import { Context, Schema } from "effect"
import type { Effect, Scope } from "effect"
import type { SandboxProfile } from "./HostConfig.js"

/**
 * How far a child's processes are contained: `pid-namespace` (each child is the first process of its
 * own PID namespace, so the kernel kills everything it started, `setsid()` and double forks included,
 * when it ends or the host dies) or `process-group-only` (no namespaces here: a process that leaves the
 * group can outlive its component and the host). Shown to the operator, never silently downgraded.
 */
export const Isolation = Schema.Literal("pid-namespace", "process-group-only")
/** How far a child's processes are contained. */
export type Isolation = typeof Isolation.Type

/** The user a `module-restricted` child runs as on a root host when its component names none; created if missing. */
export const defaultModuleUser = "corral-module"

/** Size-based rotation of a log file: `file`, `file.1` … `file.<keep>`. */
export interface Rotation {
  readonly maxBytes: number
  readonly keep: number
}

/** What to start. The environment is exactly `PATH` plus `env`: nothing of the host's leaks. */
export interface LaunchSpec {
  /** Names the child in errors and logs (a component id, a broker service). */
  readonly name: string
  readonly executable: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string
  readonly env: Readonly<Record<string, string>>
  readonly sandbox: SandboxProfile
  /**
   * `module-restricted`/`module-isolated` on a root host: the user the child runs as (no capabilities, no supplementary
   * groups). Omitted: the child keeps the host's user. Ignored, with a warning, on a non-root host.
   */
  readonly runAs?: string
  /**
   * `module-isolated`: the module's own directory, visible read-only in its private mount view (with the
   * bundled `../sdk` beside it). Omitted: the directory of the first absolute argument naming a file.
   */
  readonly moduleDir?: string
  /** `cwd` is the child's own directory: when the child runs as another user, it is handed to that user. */
  readonly ownsCwd?: boolean
  /**
   * A listening socket the host holds for the child (socket activation): the host's descriptor, passed
   * as the child's fd 3, with `LISTEN_PID` set to the pid that runs `executable` (put `LISTEN_FDS` in `env`).
   */
  readonly listenFd?: number
  /** Where stdout and stderr go (appended, rotated); omitted: kept in memory only. */
  readonly logFile?: string
  readonly rotation?: Rotation
  /** Lines of output kept in memory for status (default 50). */
  readonly recentLines?: number
}

/** How a child ended. */
export interface ExitInfo {
  readonly code: number | null
  readonly signal: string | null
}

/** How a child ended, in words that follow "the process": `was killed by SIGKILL`, `exited with code 3`. */
export const describeExit = (exit: ExitInfo): string =>
  exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code ?? "unknown"}`

/** How a stop went: `graceful` (exited after TERM), `killed` (needed KILL), or `already_exited`. */
export interface StopOutcome {
  readonly how: "graceful" | "killed" | "already_exited"
  readonly exit: ExitInfo
  /** Processes of the group still alive after KILL (should be empty; reported, never hidden). */
  readonly survivors: ReadonlyArray<number>
}

/** A running child. Its scope's end stops it (TERM → `stopTimeoutMs` → KILL). */
export interface ChildHandle {
  readonly pid: number
  /** Completes when the child has exited and its output has been drained to the log. */
  readonly exit: Effect.Effect<ExitInfo>
  /** Last lines of output (stdout and stderr interleaved), oldest first. */
  readonly recentLines: Effect.Effect<ReadonlyArray<string>>
  /** Last lines of stderr alone (a few), oldest first: what explains a crash. */
  readonly stderrLines: Effect.Effect<ReadonlyArray<string>>
  /** TERM to the group, wait up to `timeoutMs`, KILL to the group, wait until it is empty (bounded). */
  readonly stop: (timeoutMs: number) => Effect.Effect<StopOutcome>
}

/** What a one-shot run (`command_stdio`) produced. */
export interface RunResult {
  readonly exit: ExitInfo
  readonly stdout: Uint8Array
  readonly stderrTail: string
}

/** Starting or running a child failed. */
export class LaunchError extends Schema.TaggedError<LaunchError>()("LaunchError", {
  name: Schema.String,
  reason: Schema.Literal("Spawn", "Timeout", "OutputTooLarge"),
  message: Schema.String
}) {}

/** Starts and stops host-owned children. */
export interface ProcessLauncherShape {
  /** How far children are contained on this machine (decided once, at start). */
  readonly isolation: Isolation
  /** Whether `spec` will run as a user other than the host's (`runAs` given, `module-restricted` or `-isolated`, root host). */
  readonly switchesUser: (spec: Pick<LaunchSpec, "sandbox" | "runAs">) => boolean
  /**
   * The path at which a child that runs as another user, or in a `module-isolated` view, reaches its own
   * directory `cwd` (`ownsCwd`): `/media` in its private mount view where there is one, else `cwd` itself.
   */
  readonly ownDirPath: (cwd: string, sandbox?: SandboxProfile) => string
  /** Starts a long-lived child; the scope's end stops it with `stopTimeoutMs`. */
  readonly launch: (spec: LaunchSpec, stopTimeoutMs: number) => Effect.Effect<ChildHandle, LaunchError, Scope.Scope>
  /** Runs a child to completion with `stdin` as its input; killed (whole group) past `timeoutMs` or past `maxStdoutBytes`. */
  readonly run: (
    spec: LaunchSpec,
    stdin: Uint8Array,
    limits: { readonly timeoutMs: number; readonly maxStdoutBytes: number }
  ) => Effect.Effect<RunResult, LaunchError>
}

/** The process launcher of the current program. */
export class ProcessLauncher extends Context.Tag("corral/ProcessLauncher")<ProcessLauncher, ProcessLauncherShape>() {}
