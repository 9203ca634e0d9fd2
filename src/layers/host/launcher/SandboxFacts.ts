/**
 * What the sandbox gives children on this machine, as the operator sees it in `corral config show`:
 * the isolation (and why it is only process groups, when it is) and whether `module-restricted`
 * switches modules to their `run_as` user (root hosts only), and whether `module-isolated` can run here.
 */
import type { Isolation } from "../../../services/host/ProcessLauncher.js"
import { findTools, isolatedUnavailable, isolationOf } from "./SandboxArgv.js"

/** The runtime facts of the sandbox, in the JSON names `config show` prints. */
export interface SandboxFacts {
  readonly isolation: Isolation
  /** Why children get no PID namespace here (only with `process-group-only`). */
  readonly isolation_problem?: string
  /** Whether `module-restricted` modules run as their `run_as` user (false: as the host's user). */
  readonly run_as_enforced: boolean
  /** Whether `module-isolated` modules can launch here (bubblewrap installed, PID namespaces given). */
  readonly module_isolated_available: boolean
  /** Why not (only when `module_isolated_available` is false): e.g. install Debian's bubblewrap. */
  readonly module_isolated_problem?: string
}

/** Probes this machine (one short `unshare` run) and says what children get; logs nothing. */
export const sandboxFacts = (): SandboxFacts => {
  const { namespaces, tools } = findTools()
  const isolatedProblem = isolatedUnavailable(tools)
  return {
    isolation: isolationOf(tools),
    ...(namespaces._tag === "Unavailable" ? { isolation_problem: namespaces.reason } : {}),
    run_as_enforced: tools.root && tools.setpriv !== undefined,
    module_isolated_available: isolatedProblem === undefined,
    ...(isolatedProblem === undefined ? {} : { module_isolated_problem: isolatedProblem })
  }
}
