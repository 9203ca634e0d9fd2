/**
 * A module's socket held by the host (socket activation): bound by the host, on 127.0.0.1 or at a Unix
 * socket path, kept open for the component's whole life and handed to each launch of the module as
 * fd 3 (`LISTEN_FDS=1`). The host never accepts on it: the module calls `listen(2)` on the first launch
 * (a no-op but for the backlog on a socket that already listens), and from then on the socket listens
 * whether or not a module process runs, so connections made during a restart wait in the kernel's
 * backlog for the next process instead of being refused or reset, and no other process can take the
 * port between its allocation and the module's start.
 */
import * as Net from "node:net"
import * as Os from "node:os"

/** The host's handle on one held socket. */
export interface HeldSocket {
  /** The host's descriptor of the socket: what the launcher passes as the child's fd 3. */
  readonly fd: number
  /** The TCP port it is bound to (0 for a Unix socket). */
  readonly port: number
  /** Closes the host's descriptor (the socket ends with the last process that holds it). Idempotent. */
  readonly close: () => void
}

/** What to bind: a TCP port on 127.0.0.1 (0: the kernel picks one) or a Unix socket path. */
export type HeldSocketAddress =
  | { readonly _tag: "Tcp"; readonly port: number }
  | { readonly _tag: "Unix"; readonly path: string }

/** The parts of a libuv TCP or pipe handle this file uses. */
interface ServerHandle {
  readonly fd: number
  readonly getsockname?: (out: { port?: unknown }) => number
  readonly close: () => void
}

const isServerHandle = (value: unknown): value is ServerHandle =>
  typeof value === "object" && value !== null &&
  "fd" in value && typeof value.fd === "number" &&
  "close" in value && typeof value.close === "function"

const errnoName = (code: number): string =>
  Object.entries(Os.constants.errno).find(([, number]) => number === -code)?.[0] ?? `errno ${code}`

/** Node's own `bind without listen` (used by `cluster` for handles it shares); absent in some future Node. */
const createServerHandle: unknown = Reflect.get(Net, "_createServerHandle")

/**
 * Binds `address` without listening and returns the host's handle; a failure is a sentence (with the
 * errno name, e.g. `EADDRINUSE`, `EMFILE`) for the component's `LaunchFailed`.
 */
export const bindHeldSocket = (address: HeldSocketAddress): HeldSocket | string => {
  // Node's `_createServerHandle` (bind, no listen), passed by its libuv fd in `spawn`'s stdio: a listening `net.Server` would have libuv accept the module's connections in the host itself.
  if (typeof createServerHandle !== "function") {
    return "this Node has no net._createServerHandle: the host cannot hold module sockets (run Node 20 or 22)"
  }
  const made: unknown = address._tag === "Tcp"
    ? Reflect.apply(createServerHandle, Net, ["127.0.0.1", address.port, 4, undefined, 0])
    : Reflect.apply(createServerHandle, Net, [address.path, -1, -1, undefined, 0])
  const where = address._tag === "Tcp" ? `127.0.0.1:${address.port}` : address.path
  if (typeof made === "number") return `cannot bind ${where}: ${errnoName(made)}`
  if (!isServerHandle(made) || made.fd < 0) return `cannot bind ${where}: Node gave no descriptor for it`
  let port = 0
  if (address._tag === "Tcp") {
    const out: { port?: unknown } = {}
    const status = made.getsockname?.(out) ?? -1
    if (status !== 0 || typeof out.port !== "number") {
      made.close()
      return `cannot read the port bound at ${where}`
    }
    port = out.port
  }
  let open = true
  return {
    fd: made.fd,
    port,
    close: () => {
      if (!open) return
      open = false
      made.close()
    }
  }
}
