import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Ref, Schema, Scope } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { makeModuleClient } from "../../../src/layers/host/ModuleClient.js"
import { bearerHeaders, type ModuleClientShape, unixEndpoint } from "../../../src/services/host/ModuleClient.js"

// The host's module client against the real Python SDK (modules/tests/fixtures/echo_module.py), on
// real sockets: kept-alive connections, the token on every call, and restarts.

const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim()
const echoModule = fileURLToPath(new URL("../../../modules/tests/fixtures/echo_module.py", import.meta.url))
const limits = { timeoutMs: 5_000, maxResponseBytes: 65_536 }
const initMessage = {
  type: "middleware-init",
  host_version: "0.1.0",
  middleware_contract_version: "1",
  host_api_version: "1",
  component_id: "middleware.echo",
  module_id: "echo",
  config: {}
}

/** A running echo module: its pid, endpoint and launch token. */
interface EchoModule {
  readonly pid: number
  readonly endpoint: string
  readonly token: string
  /** Sends `signal` and waits (bounded) for the process to exit. */
  readonly stop: (signal: NodeJS.Signals) => Effect.Effect<void>
}

const ServingLine = Schema.parseJson(Schema.Struct({ msg: Schema.Literal("serving"), socket: Schema.optional(Schema.String), port: Schema.optional(Schema.Number) }))

/** Starts the echo module on `listen` (a Unix socket path, or a TCP port chosen by the module) and waits until it serves. */
const startEcho = (listen: { readonly socketPath: string } | "tcp"): Effect.Effect<EchoModule, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly module: EchoModule; readonly kill: () => void }, Error>((resume) => {
      const token = randomBytes(32).toString("hex")
      const child = spawn(python, [echoModule], {
        env: {
          PATH: process.env["PATH"] ?? "/usr/bin:/bin",
          PYTHONDONTWRITEBYTECODE: "1",
          CORRAL_MODULE_TOKEN: token,
          ...(listen === "tcp" ? { CORRAL_MODULE_PORT: "0" } : { CORRAL_MODULE_SOCKET: listen.socketPath })
        },
        stdio: ["ignore", "ignore", "pipe"]
      })
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      const timer = setTimeout(() => resume(Effect.fail(new Error("echo module: no \"serving\" line within 10 s"))), 10_000)
      const lines = readline.createInterface({ input: child.stderr })
      lines.on("line", (line) => {
        const parsed = Schema.decodeUnknownOption(ServingLine)(line)
        if (parsed._tag === "None") return
        clearTimeout(timer)
        const { port, socket } = parsed.value
        const pid = child.pid ?? -1
        resume(Effect.succeed({
          module: {
            pid,
            token,
            endpoint: socket === undefined ? `http://127.0.0.1:${port ?? 0}` : unixEndpoint(socket),
            stop: (signal) =>
              Effect.promise(() => {
                child.kill(signal)
                return exited
              }).pipe(Effect.timeout(Duration.seconds(10)), Effect.orDie)
          },
          kill: () => child.kill("SIGKILL")
        }))
      })
      child.once("exit", () => {
        clearTimeout(timer)
        resume(Effect.fail(new Error("echo module exited before serving")))
      })
    }),
    ({ kill }) => Effect.sync(kill)
  ).pipe(Effect.map(({ module }) => module))

/** The module's server counters, from its open `/healthz` route. */
const counters = (client: ModuleClientShape, module: EchoModule) =>
  client.get(module.endpoint, "/healthz", limits).pipe(
    Effect.map((reply) => Schema.decodeUnknownSync(Schema.Struct({ connections_accepted: Schema.Number, idle: Schema.Number, accepted: Schema.Number }))(reply.body))
  )

const invoke = (client: ModuleClientShape, module: EchoModule, n: number) =>
  client.postJson(module.endpoint, "/v1/middleware/invoke", { id: `e-${n}`, hook: "ingress", subject: "alice", payload: { n } }, limits, bearerHeaders(module.token))

const init = (client: ModuleClientShape, module: EchoModule) =>
  client.postJson(module.endpoint, "/v1/middleware/init", initMessage, limits, bearerHeaders(module.token))

const tempSocket = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "corral-ka-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => path.join(dir, "echo.sock")))

describe("ModuleClientLive against the Python SDK: keep-alive", () => {
  for (const transport of ["tcp", "unix"] as const) {
    it.scopedLive(`makes 100 calls on one kept-alive connection over ${transport}, each with the token`, () =>
      Effect.gen(function*() {
        const module = yield* startEcho(transport === "tcp" ? "tcp" : { socketPath: yield* tempSocket })
        const client = yield* makeModuleClient()
        yield* init(client, module)
        for (let n = 0; n < 100; n++) {
          const reply = yield* invoke(client, module, n)
          expect(reply.body).toMatchObject({ decision: "allow", annotations: { "echo.subject": "alice" } })
        }
        const seen = yield* counters(client, module)
        expect(seen.accepted).toBe(102)
        expect(seen.connections_accepted).toBe(1)
      }))
  }

  it.scopedLive("drops an endpoint's kept connections when its calls carry a new launch token", () =>
    Effect.gen(function*() {
      const module = yield* startEcho("tcp")
      const client = yield* makeModuleClient()
      yield* init(client, module)
      expect((yield* counters(client, module)).connections_accepted).toBe(1)
      // Calls with another token are what the host sends after a restart on the same endpoint.
      const other = yield* Effect.flip(client.postJson(module.endpoint, "/v1/middleware/invoke", {}, limits, bearerHeaders("f".repeat(64))))
      expect(other.status).toBe(401)
      const seen = yield* counters(client, module)
      expect(seen.connections_accepted).toBe(2) // the new launch's call did not reuse the old connection
      expect(seen.idle).toBe(0) // …and the old connection was closed by the host (the probe above is active)
    }))

  it.scopedLive("loses no call across a graceful restart and a crash on the same socket path under load", () =>
    Effect.gen(function*() {
      const socketPath = yield* tempSocket
      const client = yield* makeModuleClient()
      // What the supervisor does: route calls only to a ready launch (its endpoint and token).
      const routed = yield* Ref.make<EchoModule | undefined>(undefined)
      const outcomes: Array<{ readonly ok: boolean; readonly startedOn: number; readonly reason: string }> = []
      let launches = 0
      const launch = Effect.gen(function*() {
        const module = yield* startEcho({ socketPath })
        yield* init(client, module)
        launches += 1
        yield* Ref.set(routed, module)
        return module
      })
      let n = 0
      const worker = Effect.gen(function*() {
        for (;;) {
          const module = yield* Ref.get(routed)
          if (module === undefined) {
            yield* Effect.sleep(Duration.millis(1))
            continue
          }
          const startedOn = launches
          const result = yield* Effect.either(invoke(client, module, n++))
          outcomes.push(result._tag === "Right" ? { ok: true, startedOn, reason: "" } : { ok: false, startedOn, reason: result.left.reason })
        }
      })
      const waitCalls = (count: number) =>
        Effect.gen(function*() {
          const target = outcomes.length + count
          while (outcomes.length < target) yield* Effect.sleep(Duration.millis(5))
        }).pipe(Effect.timeout(Duration.seconds(20)), Effect.orDie)

      const first = yield* launch
      const workers = yield* Effect.forkScoped(Effect.all(Array.from({ length: 8 }, () => worker), { concurrency: "unbounded" }))
      yield* waitCalls(200)
      // Graceful restart: stop routing, then SIGTERM; in-flight calls are answered, idle connections closed.
      yield* Ref.set(routed, undefined)
      yield* first.stop("SIGTERM")
      const second = yield* launch
      yield* waitCalls(200)
      // Crash: calls in flight at the kill, and those routed before its exit is noticed, fail.
      yield* second.stop("SIGKILL")
      yield* Ref.set(routed, undefined)
      yield* launch
      yield* waitCalls(200)
      yield* Fiber.interrupt(workers)

      const failed = outcomes.filter((outcome) => !outcome.ok)
      // Only calls routed to the crashed launch failed, each as Unreachable; none before the graceful
      // restart, none after it, none to the launch that replaced the crashed one.
      expect(failed.filter((outcome) => outcome.startedOn !== 2)).toEqual([])
      expect(failed.filter((outcome) => outcome.reason !== "Unreachable")).toEqual([])
      expect(outcomes.length).toBeGreaterThanOrEqual(600)
    }))
})
