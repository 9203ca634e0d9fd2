/**
 * Where a supervised module listens during one run: a loopback TCP port (`http.port` "auto" or fixed,
 * or `http.endpoint`), or with `http.transport: "unix"` a Unix socket, so no port exists for another
 * local user to find. The socket lives in the host's own 0700 directory `run/modules/`; a module that
 * runs as another user cannot reach `run/`, so its socket goes in its own 0700 work dir (its cwd, inside
 * the host's 0700 `work/`) and it is told the name relative to that cwd. Gives the endpoint the host
 * calls, the variable and placeholder the module gets, and what to remove when the component ends.
 *
 * The host binds the socket itself (`HeldSocket`: TCP for `port` "auto" or a number, or the Unix
 * socket) and the launcher hands it to every launch of the module as fd 3 with `LISTEN_FDS=1`; only an
 * `http.endpoint` is left for the module to bind.
 */
import * as Path from "node:path"
import { Effect } from "effect"
import type { HttpConfig, LaunchConfig } from "../../../services/host/HostConfig.js"
import { unixEndpoint } from "../../../services/host/ModuleClient.js"
import type { LoopbackPortsShape } from "../../../services/system/LoopbackPorts.js"
import { privateDirectorySync } from "../../system/PrivateDirectory.js"
import { removeStaleSocket } from "../../system/SocketFiles.js"
import { bindHeldSocket, type HeldSocket } from "./HeldSocket.js"

/** `sun_path` holds 108 bytes on Linux, the terminating NUL included. */
const maxSocketPathBytes = 107

/** Where one run of a module listens. */
export interface ModuleListen {
  /** What the host calls: `http://127.0.0.1:PORT` or `unix:/…/run/modules/<id>.sock`. */
  readonly endpoint: string
  /** `CORRAL_MODULE_PORT` or `CORRAL_MODULE_SOCKET`. */
  readonly env: Readonly<Record<string, string>>
  /** `{port}` or `{socket}` for the launch. */
  readonly placeholders: Readonly<Record<string, string>>
  /** The host's descriptor of the socket it holds for the module (passed as fd 3); undefined when the module binds. */
  readonly listenFd: number | undefined
  /** Closes the held socket and removes its file, once no process of the component runs any more. */
  readonly release: Effect.Effect<void>
}

/** The socket-activation variables (systemd's convention) a launch gets beside a held socket; `LISTEN_PID` is set by the launcher. */
export const listenFdsEnv: Readonly<Record<string, string>> = { LISTEN_FDS: "1", LISTEN_FDNAMES: "http" }

/**
 * Where a module can create its socket: the host's `run/modules/` (it runs as the host's user), its own
 * work dir (it runs as another user, with that dir as its cwd), or nowhere (`why` says what to change).
 */
export type SocketPlace =
  | { readonly _tag: "HostDir" }
  | { readonly _tag: "OwnDir"; readonly dir: string }
  | { readonly _tag: "Unreachable"; readonly why: string }

/** The socket's name inside a module's own work dir. */
const ownDirSocketName = "module.sock"

/** The 0700 directory of module sockets under a data dir. */
export const moduleSocketDir = (dataDir: string): string => Path.join(dataDir, "run", "modules")

const usesPlaceholder = (launch: LaunchConfig, name: string): boolean =>
  [launch.executable, ...launch.args, launch.cwd ?? "", ...Object.values(launch.env)].some((text) => text.includes(`{${name}}`))

/** Unlinks a stale socket from an earlier run at `path`; anything else there is an error. */
const clearSocketPath = (path: string): void => {
  if (removeStaleSocket(path) === "not_socket") throw new Error(`${path} exists and is not a socket; remove it`)
}

const unixListen = (
  dataDir: string,
  componentId: string,
  http: HttpConfig,
  launch: LaunchConfig,
  place: SocketPlace
): Effect.Effect<ModuleListen, string> => {
  if (http.endpoint !== undefined || typeof http.port === "number") {
    return Effect.fail(`http.transport "unix" takes no http.endpoint or fixed http.port (the host names the module's socket)`)
  }
  if (usesPlaceholder(launch, "port")) {
    return Effect.fail(`launch uses {port} but http.transport is "unix": use {socket}, or nothing (the module reads CORRAL_MODULE_SOCKET)`)
  }
  if (place._tag === "Unreachable") return Effect.fail(`http.transport "unix": the module cannot reach a socket directory: ${place.why}`)
  return Effect.try({
    try: (): ModuleListen => {
      const socketPath = place._tag === "OwnDir"
        ? Path.join(place.dir, ownDirSocketName)
        : Path.join(privateDirectorySync(moduleSocketDir(dataDir)), `${componentId}.sock`)
      // The module's name for it: relative to its cwd when it cannot walk the host's path.
      const moduleSocketPath = place._tag === "OwnDir" ? ownDirSocketName : socketPath
      if (Buffer.byteLength(socketPath) > maxSocketPathBytes) {
        throw new Error(`the module socket path ${socketPath} is longer than ${maxSocketPathBytes} bytes (a Linux limit); use a shorter --data-dir`)
      }
      clearSocketPath(socketPath)
      const held = bindHeldSocket({ _tag: "Unix", path: socketPath })
      if (typeof held === "string") throw new Error(held)
      return {
        endpoint: unixEndpoint(socketPath),
        env: { CORRAL_MODULE_SOCKET: moduleSocketPath, ...listenFdsEnv },
        placeholders: { socket: moduleSocketPath },
        listenFd: held.fd,
        release: Effect.sync(() => {
          held.close()
          try {
            // Something that is not a socket took the path meanwhile: not ours to delete, so left.
            removeStaleSocket(socketPath)
          } catch {
            // Unremovable: the next run's start reports it.
          }
        })
      }
    },
    catch: (error) => `module socket: ${error instanceof Error ? error.message : String(error)}`
  })
}

/** Ports tried again after one was taken between allocation and bind. */
const allocationRetries = 3

const heldTcp = (held: HeldSocket): ModuleListen => ({
  endpoint: `http://127.0.0.1:${held.port}`,
  env: { CORRAL_MODULE_PORT: String(held.port), ...listenFdsEnv },
  placeholders: { port: String(held.port) },
  listenFd: held.fd,
  release: Effect.sync(held.close)
})

/**
 * Where `componentId` listens (see the file doc), bound now and held until `release`; a failure is the
 * reason, for `LaunchFailed` (with `EMFILE`/`ENFILE` in it when the host is out of descriptors).
 */
export const moduleListen = (
  ports: LoopbackPortsShape,
  dataDir: string,
  componentId: string,
  http: HttpConfig,
  launch: LaunchConfig,
  place: SocketPlace
): Effect.Effect<ModuleListen, string> => {
  if (http.transport === "unix") return unixListen(dataDir, componentId, http, launch, place)
  if (http.endpoint !== undefined) {
    // A fixed endpoint is the module's to bind (it may not even be started by the SDK).
    const port = typeof http.port === "number" ? http.port : Number(new URL(http.endpoint).port)
    return Effect.succeed({
      endpoint: http.endpoint,
      env: { CORRAL_MODULE_PORT: String(port) },
      placeholders: { port: String(port) },
      listenFd: undefined,
      release: Effect.void
    })
  }
  const bind = (port: number) =>
    Effect.suspend(() => {
      const held = bindHeldSocket({ _tag: "Tcp", port })
      return typeof held === "string" ? Effect.fail(held) : Effect.succeed(heldTcp(held))
    })
  if (typeof http.port === "number") return bind(http.port)
  // From the host's one allocator (it keeps module and backend ports apart), bound at once; a port taken
  // in the instant between the allocator's probe and this bind is given up for another one.
  return Effect.flatMap(Effect.mapError(ports.allocate, (error) => `no free port: ${error.message}`), bind).pipe(
    Effect.retry({ times: allocationRetries, while: (reason) => reason.includes("EADDRINUSE") })
  )
}

