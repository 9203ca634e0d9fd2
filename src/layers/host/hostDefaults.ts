/**
 * The host's own defaults fragment, merged after every module's factory fragments and before the
 * operator's. Only host settings live here; components, hooks and modules come from fragments.
 */
import type { HostConfig } from "../../services/host/HostConfig.js"

/** Control server on loopback with an OS-chosen port, and the rotation of logs and traces. */
export const hostDefaults = {
  host: {
    control: { host: "127.0.0.1", port: 0, max_connections: 64, handler_timeout_ms: 30_000 },
    logs: { max_bytes: 1_048_576, keep: 3 },
    trace: { max_bytes: 4_194_304, keep: 3 }
  }
} as const satisfies typeof HostConfig.Encoded
