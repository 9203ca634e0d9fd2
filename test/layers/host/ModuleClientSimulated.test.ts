import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { makeSimulatedLauncher } from "../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { makeSimulatedModuleClient, wellBehavedModule } from "../../../src/layers/host/ModuleClientSimulated.js"
import { ModuleClient } from "../../../src/services/host/ModuleClient.js"
import { ProcessLauncher } from "../../../src/services/host/ProcessLauncher.js"

const limits = { timeoutMs: 400, maxResponseBytes: 4_096 }
const auth = { authorization: "Bearer t0k" }
const endpoint = "http://127.0.0.1:1234"

/** A launcher and a transport over it, with one module process listening on port 1234 with token `t0k`. */
const world = Effect.gen(function*() {
  const { control: processes, layer } = yield* makeSimulatedLauncher
  const { control: modules, layer: clientLayer } = yield* makeSimulatedModuleClient(processes)
  const launcher = yield* Effect.provide(ProcessLauncher, layer)
  const client = yield* Effect.provide(ModuleClient, clientLayer)
  const launch = launcher.launch({
    name: "middleware.x",
    executable: "module",
    args: [],
    env: { CORRAL_MODULE_PORT: "1234", CORRAL_MODULE_TOKEN: "t0k" },
    sandbox: "none"
  }, 300)
  return { processes, modules, client, launch }
})

describe("ModuleClientSimulated", () => {
  it.scoped("answers as the process's plan says: readiness late, garbage, too much, error statuses, a wrong token", () =>
    Effect.gen(function*() {
      const { modules, client, launch } = yield* world
      const refused = yield* Effect.flip(client.get(endpoint, "/readyz", limits))
      expect(refused.reason).toBe("Unreachable")
      yield* modules.scriptModules(() => ({ ...wellBehavedModule, readyAfterMs: 500, init: { _tag: "Garbage" }, invoke: { _tag: "TooMuch" } }))
      const child = yield* launch
      expect((yield* client.get(endpoint, "/readyz", limits)).status).toBe(503)
      yield* TestClock.adjust("500 millis")
      expect((yield* client.get(endpoint, "/readyz", limits)).status).toBe(200)
      expect((yield* client.postJson(endpoint, "/v1/middleware/init", {}, limits, auth)).body).toEqual({ not: "a module report" })
      expect((yield* Effect.flip(client.postJson(endpoint, "/v1/middleware/invoke", {}, limits, auth))).reason).toBe("TooLarge")
      yield* modules.change(child.pid, { invoke: { _tag: "Status", status: 500 }, health: { _tag: "Status", status: 503 } })
      expect(yield* Effect.flip(client.postJson(endpoint, "/v1/middleware/invoke", {}, limits, auth))).toMatchObject({ reason: "Status", status: 500 })
      expect((yield* client.get(endpoint, "/healthz", limits)).status).toBe(503)
      const stale = yield* Effect.flip(client.postJson(endpoint, "/v1/middleware/invoke", {}, limits, { authorization: "Bearer old" }))
      expect(stale).toMatchObject({ reason: "Status", status: 401 })
    }))

  it.scoped("a silent or slow module times out at the call's limit, and a process that exits mid-call resets it", () =>
    Effect.gen(function*() {
      const { processes, modules, client, launch } = yield* world
      const child = yield* launch
      yield* modules.change(child.pid, { invoke: { _tag: "Silent" }, health: { _tag: "Slow", delayMs: 100 } })
      const silent = yield* Effect.fork(Effect.flip(client.postJson(endpoint, "/v1/middleware/invoke", {}, limits, auth)))
      yield* TestClock.adjust("400 millis")
      expect((yield* Fiber.join(silent)).reason).toBe("Timeout")
      const slow = yield* Effect.fork(client.get(endpoint, "/healthz", limits))
      yield* TestClock.adjust("100 millis")
      expect((yield* Fiber.join(slow)).status).toBe(200)
      const cut = yield* Effect.fork(Effect.flip(client.postJson(endpoint, "/v1/middleware/invoke", {}, limits, auth)))
      yield* TestClock.adjust("10 millis")
      yield* processes.crash(child.pid, 1)
      expect((yield* Fiber.join(cut)).reason).toBe("Unreachable")
      expect(yield* modules.accepts(endpoint)).toBe(false)
    }))
})
