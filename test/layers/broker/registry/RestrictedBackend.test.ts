/**
 * Issue 8, item 7, for the broker: on a root host a `module-restricted` backend switches user as a
 * restricted module does. It runs as the module user (never uid 0) and still answers hellos end to end:
 * its socket sits in a 0700 directory of its own under `run/backends/`, handed to that user and mounted
 * into its view, and the broker's clients (root) connect to it there.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { makeBroker } from "../../../../src/layers/broker/Broker.js"
import { makeBrokerClient } from "../../../../src/layers/broker/BrokerClient.js"
import { resolveModuleUser } from "../../../../src/layers/host/launcher/ModuleUser.js"
import { ProcessLauncherLive } from "../../../../src/layers/host/launcher/ProcessLauncher.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { defaultModuleUser } from "../../../../src/services/host/ProcessLauncher.js"
import { makeEchoServices } from "../../../support/brokerFixture.js"
import { echo } from "../../../support/brokerRegistry.js"
import { processesWhoseArgv } from "../../../support/procfs.js"

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
  processesWhoseArgv((argv, pid) => {
    try {
      return argv.includes(script) && Path.basename(Fs.readlinkSync(`/proc/${pid}/exe`)).startsWith("python")
    } catch {
      return false
    }
  })

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
        // Resolving creates the module user on a fresh machine, whichever test file runs first.
        const moduleUid = (yield* Effect.orDie(resolveModuleUser(defaultModuleUser))).uid
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
