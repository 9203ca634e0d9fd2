/**
 * `corral up` on top of a built host: every enabled component started, then one `up` JSON line on
 * stdout and a summary on stderr. Lifecycle events go to stderr as they happen (`printLifecycleEvent`).
 */
import { Effect, Layer } from "effect"
import { ControlApi } from "../../services/host/ControlApi.js"
import { HostPaths } from "../../services/host/HostPaths.js"
import type { HostReload } from "../../services/host/HostReload.js"
import { Supervisor } from "../../services/host/Supervisor.js"
import type { LifecycleEvent } from "../../services/host/Traces.js"
import { reloadOnHangup } from "./HangupReload.js"
import { stderrLine, stdoutJson } from "./Terminal.js"

/** One lifecycle event as a line for the person watching `corral up`. */
export const printLifecycleEvent = (event: LifecycleEvent): Effect.Effect<void> =>
  stderrLine(`${event.at}  ${event.component.padEnd(24)} ${event.from} → ${event.to}  ${event.reason}`)

/** Announces the host, starts its components and reports them; stays until the host stops. */
export const HostUp: Layer.Layer<never, never, ControlApi | Supervisor | HostPaths | HostReload> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const control = yield* ControlApi
    const supervisor = yield* Supervisor
    const paths = yield* HostPaths
    yield* stderrLine(`corral: control API on ${control.url} (token in ${control.tokenFile})`)
    yield* supervisor.startAll
    const components = yield* supervisor.list
    yield* stdoutJson({
      event: "up",
      url: control.url,
      data_dir: paths.dataDir,
      components: components.map((c) => ({ id: c.id, phase: c.phase, pid: c.pid, last_error: c.last_error }))
    })
    yield* stderrLine(
      `corral: up — ${components.map((c) => `${c.id} ${c.phase}`).join(", ") || "no components"}; Ctrl-C stops everything`
    )
    // From here on (every component started once), SIGHUP reloads the config.
    yield* reloadOnHangup
  })
)
