/**
 * Where a follow (`corral events`, `corral logs -f`) reconnects after its stream ended or broke: the
 * same host (it ends streams hourly; a proxy may cut them), or the host of the same data dir restarted
 * meanwhile (a new URL and token in `run/control.json`), looked for during a bounded window so that a
 * `corral up` restarted by hand or by a service manager is followed, and a host that is gone for good
 * ends the follow with one line.
 */
import { Effect, Schedule } from "effect"
import { ControlCallError, type ControlEndpoint, locateHost, startHint } from "./ControlClient.js"

/** How long a follow waits for the data dir's host to be back before it gives up. */
export const hostReturnWindowMs = 15_000

const pollMs = 250

/** The host to follow next, and whether it is a new run of it (then the old stream's position means nothing). */
export interface Reconnection {
  readonly endpoint: ControlEndpoint
  readonly restarted: boolean
}

/** Whether a failed call says the host is gone (or not answering), rather than that it refused the request. */
export const hostAway = (error: ControlCallError): boolean => error.reason === "no_host" || error.reason === "unreachable"

/** Finds the data dir's host again within `hostReturnWindowMs`, or fails saying it stopped. */
export const reconnect = (previous: ControlEndpoint): Effect.Effect<Reconnection, ControlCallError> =>
  locateHost(previous.target).pipe(
    Effect.retry({ schedule: Schedule.spaced(pollMs).pipe(Schedule.upTo(hostReturnWindowMs)), while: hostAway }),
    Effect.map((endpoint): Reconnection => ({ endpoint, restarted: endpoint.instance !== previous.instance })),
    Effect.catchIf(hostAway, () =>
      Effect.fail(
        new ControlCallError({
          reason: "no_host",
          message: `the host at ${previous.url} stopped and none came back in ${previous.target.dataDir} within ${hostReturnWindowMs / 1000} s; start one with: ${startHint(previous.target)}`
        })
      ))
  )
