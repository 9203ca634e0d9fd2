/**
 * Where a supervised module listens during one run: a loopback TCP port (`http.port` "auto" or fixed,
 * or `http.endpoint`), or with `http.transport: "unix"` a Unix socket, so no port exists for another
 * local user to find. The socket lives in the host's own 0700 directory `run/modules/`; a module that
 * runs as another user cannot reach `run/`, so its socket goes in its own 0700 work dir (its cwd, inside
 * the host's 0700 `work/`) and it is told the name relative to that cwd. Gives the endpoint the host
 * calls, the variable and placeholder the module gets, and what to remove when the run ends.
 */
import * as Path from "node:path"
import { Effect } from "effect"
import type { HttpConfig, LaunchConfig } from "../../../services/host/HostConfig.js"
import { unixEndpoint } from "../../../services/host/ModuleClient.js"
import type { LoopbackPortsShape } from "../../../services/system/LoopbackPorts.js"
import { privateDirectorySync } from "../../system/PrivateDirectory.js"
import { removeStaleSocket } from "../../system/SocketFiles.js"

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
  /** Removes what the run left behind (its socket file), once its process is gone. */
  readonly release: Effect.Effect<void>
}

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
      return {
        endpoint: unixEndpoint(socketPath),
        env: { CORRAL_MODULE_SOCKET: moduleSocketPath },
        placeholders: { socket: moduleSocketPath },
        release: Effect.sync(() => {
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

/** Where `componentId` listens for this run (see the file doc); a failure is the reason, for `LaunchFailed`. */
export const moduleListen = (
  ports: LoopbackPortsShape,
  dataDir: string,
  componentId: string,
  http: HttpConfig,
  launch: LaunchConfig,
  place: SocketPlace
): Effect.Effect<ModuleListen, string> => {
  if (http.transport === "unix") return unixListen(dataDir, componentId, http, launch, place)
  const port: Effect.Effect<number, string> = http.port === "auto" || (http.port === undefined && http.endpoint === undefined)
    ? Effect.mapError(ports.allocate, (error) => `no free port: ${error.message}`)
    : Effect.succeed(typeof http.port === "number" ? http.port : Number(new URL(http.endpoint ?? "http://127.0.0.1:0").port))
  return Effect.map(port, (allocated): ModuleListen => ({
    endpoint: http.endpoint ?? `http://127.0.0.1:${allocated}`,
    env: { CORRAL_MODULE_PORT: String(allocated) },
    placeholders: { port: String(allocated) },
    release: Effect.void
  }))
}
