/**
 * Backend registry cases: a dir per case with the echo services (`brokerFixture`), a run dir and a
 * logs dir, and a registry made on them with their service definitions.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { type BackendRegistryOptions, makeBackendRegistry } from "../../src/layers/broker/registry/BackendRegistry.js"
import { ServiceDefinitionsLive } from "../../src/layers/broker/ServiceDefinitions.js"
import type { BackendRegistryShape } from "../../src/services/broker/BackendRegistry.js"
import type { Endpoint } from "../../src/services/broker/BrokerProtocol.js"
import type { ProcessLauncher } from "../../src/services/host/ProcessLauncher.js"
import type { LoopbackPorts } from "../../src/services/system/LoopbackPorts.js"
import { backendSocketsIn, type EchoServices, makeEchoServices } from "./brokerFixture.js"

/** One registry test's files. */
export interface RegistryCase extends EchoServices {
  readonly dir: string
  readonly runDir: string
  readonly logsDir: string
  /** Backend socket files left in `run/backends/`. */
  readonly socketFiles: () => ReadonlyArray<string>
}

let counter = 0

/** A fresh case under `root` (keep `root` short: unix socket paths must stay under 108 bytes). */
export const makeRegistryCase = (root: string): RegistryCase => {
  const dir = Path.join(root, `c${counter++}`)
  const runDir = Path.join(dir, "run")
  const services = makeEchoServices(dir)
  Fs.mkdirSync(runDir, { mode: 0o700 })
  return { ...services, dir, runDir, logsDir: Path.join(dir, "logs"), socketFiles: () => backendSocketsIn(runDir) }
}

/** A registry on the case's dirs and service definitions, living as long as the scope. */
export const registryFor = (
  c: RegistryCase,
  extra: Partial<BackendRegistryOptions> = {}
): Effect.Effect<BackendRegistryShape, never, ProcessLauncher | LoopbackPorts | Scope.Scope> =>
  makeBackendRegistry({ runDir: c.runDir, logsDir: c.logsDir, ...extra }).pipe(
    Effect.provide(ServiceDefinitionsLive(c.servicesDir))
  )

/** Sends a line to the (echo) backend at `endpoint` and answers what comes back; fails after 5 s without an answer. */
export const echo = (endpoint: Endpoint, line: string): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    const socket = endpoint.kind === "unix"
      ? Net.createConnection({ path: endpoint.path })
      : Net.createConnection({ host: endpoint.host, port: endpoint.port })
    let received = ""
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("connect", () => socket.write(`${line}\n`))
    socket.on("data", (chunk) => {
      received += chunk.toString("utf8")
      if (received.endsWith("\n")) {
        socket.destroy()
        resume(Effect.succeed(received.trimEnd()))
      }
    })
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`no echo from ${JSON.stringify(endpoint)} within 5 s`) }))
