/**
 * Issue 8, item 7, for the broker: on a root host a `module-restricted` backend switches user as a
 * restricted module does. It runs as the module user (never uid 0) and still answers hellos end to end:
 * its socket sits in a 0700 directory of its own under `run/backends/`, handed to that user and mounted
 * into its view, and the broker's clients (root) connect to it there.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { makeBroker } from "../../../../src/layers/broker/Broker.js"
import { makeBrokerClient } from "../../../../src/layers/broker/BrokerClient.js"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import type { Endpoint } from "../../../../src/services/broker/BrokerProtocol.js"
import { defaultModuleUser } from "../../../../src/services/host/ProcessLauncher.js"
import { makeEchoServices } from "../../../support/brokerFixture.js"

/** An interpreter the module user can run (root's pyenv shims live in a 0700 home). */
const systemPython = "/usr/bin/python3"
const skipReason = process.getuid?.() !== 0
  ? "a user switch needs a root host (run the suite as root, as CI does)"
  : !Fs.existsSync(systemPython)
  ? `the module user needs ${systemPython} to run the echo backend`
  : undefined
if (skipReason !== undefined) console.log(`RestrictedBackend.test: skipped: ${skipReason}`)

/** The real uid of `pid`, from `/proc/<pid>/status`. */
const uidOf = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1])

/** The Python processes running `script` (not the launcher's wrappers, whose argv names it too). */
const interpretersRunning = (script: string): ReadonlyArray<number> =>
  Fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(script) &&
        Path.basename(Fs.readlinkSync(`/proc/${pid}/exe`)).startsWith("python")
    } catch {
      return false
    }
  })

/** Sends a line to the backend at `endpoint` (bounded: 5 s) and answers what comes back. */
const echo = (endpoint: Endpoint, line: string): Effect.Effect<string, Error> =>
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

/**
 * A data dir searchable by anyone (0755), so that only the broker's own modes (`run/` 0700) stand
 * between the backend's user and its socket; its echo backend runs on the system interpreter.
 */
const dataDir = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cbk-"))
    Fs.chmodSync(dir, 0o755)
    return { dir, ...makeEchoServices(dir, systemPython) }
  }),
  ({ dir }) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("a module-restricted broker backend on a root host", () => {
  it.scopedLive.skipIf(skipReason !== undefined)(
    "runs as the module user, not root, and answers hellos end to end through its own 0700 socket directory",
    () =>
      Effect.gen(function*() {
        const moduleUid = Number(execFileSync("id", ["-u", defaultModuleUser], { encoding: "utf8" }).trim())
        const data = yield* dataDir
        data.define("echo", { sandbox_profile: "module-restricted" })
        const backendsDir = Path.join(data.dir, "run", "backends")
        let ownDir = ""
        yield* Effect.scoped(Effect.gen(function*() {
          const broker = yield* makeBroker({ dataDir: data.dir }).pipe(Effect.provide(Layer.merge(ProcessLauncherLive, LoopbackPortsLive)))
          const client = makeBrokerClient(broker.socketPath)
          const hello = yield* client.hello("echo")
          expect(hello).toMatchObject({ type: "hello.ok", service: "echo", version: "1.0.0", launched: true })
          expect(yield* echo(hello.endpoint, "hello restricted backend")).toBe("hello restricted backend")

          const interpreters = interpretersRunning(data.backend)
          expect(interpreters).toHaveLength(1)
          expect(interpreters.map(uidOf)).toEqual([moduleUid])
          expect(moduleUid).not.toBe(0)

          // The socket: in a directory of the backend's own (0700, its user's), under the host's 0700 backends dir.
          if (hello.endpoint.kind !== "unix") throw new Error(`expected a unix endpoint, got ${JSON.stringify(hello.endpoint)}`)
          ownDir = Path.dirname(hello.endpoint.path)
          expect(Path.dirname(ownDir)).toBe(backendsDir)
          const own = Fs.statSync(ownDir)
          expect({ uid: own.uid, mode: own.mode & 0o777 }).toEqual({ uid: moduleUid, mode: 0o700 })
          const backends = Fs.statSync(backendsDir)
          expect({ uid: backends.uid, mode: backends.mode & 0o777 }).toEqual({ uid: 0, mode: 0o700 })

          const again = yield* client.hello("echo")
          expect(again).toMatchObject({ type: "hello.ok", instance: hello.instance, launched: false })
          expect(yield* echo(again.endpoint, "and again")).toBe("and again")
        }))
        // The broker's stop took the backend and its directory with it.
        expect(interpretersRunning(data.backend)).toEqual([])
        expect(Fs.existsSync(ownDir)).toBe(false)
      }),
    20_000
  )
})
