/**
 * ControlApi: the host's control server on loopback (a bounded server), its bearer token in
 * `run/control.token` (0600) and its URL and pid in `run/control.json`, both removed when it stops.
 */
import { Context } from "effect"
import type { BoundedServerShape } from "../server/BoundedServer.js"

/** The running control server. */
export interface ControlApiShape {
  /** Where it listens, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  /** The file that holds the bearer token every `/v1/*` route needs. */
  readonly tokenFile: string
  readonly server: BoundedServerShape
}

/** The control server of the current host. */
export class ControlApi extends Context.Tag("corral/ControlApi")<ControlApi, ControlApiShape>() {}
