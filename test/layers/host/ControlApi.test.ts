/**
 * The control API at the trust boundary, on its real server (the host's Layer graph with an in-process
 * hook step and no supervised modules): the operator keeps control under load, bodies are bounded
 * before they are read, and malformed paths are the client's error, never a defect or an alarm.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Layer, Logger, Ref, Schema } from "effect"
import { hookInvocationPermits } from "../../../src/layers/host/ControlServer.js"
import { HostServicesLive } from "../../../src/layers/host/HostLive.js"
import { makeSimulatedLauncher } from "../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { ControlApi } from "../../../src/services/host/ControlApi.js"
import { HostConfig } from "../../../src/services/host/HostConfig.js"
import { parseIssueLines } from "../../../src/services/system/ParseIssues.js"
import { connect, parseResponse, readUntilClose, request, streamChunkedBody, waitUntil } from "../../support/rawHttp.js"
import { scriptedModuleClient } from "../../support/scriptedModules.js"

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/** A host whose `ingress` hook is one in-process step that waits for `release`; its control port and token. */
const hostWithSlowHook = Effect.gen(function*() {
  const dataDir = yield* tempDir("corral-control-")
  const modulesDir = yield* tempDir("corral-nomodules-")
  Fs.mkdirSync(Path.join(dataDir, "config"), { recursive: true })
  Fs.writeFileSync(
    Path.join(dataDir, "config", "10-test.json"),
    // The step itself would take all 200: only the control server's own bounds stand between them and the operator.
    JSON.stringify({ components: { slow: { kind: "in_process", function: "slow", max_concurrency: 256 } }, hooks: { ingress: ["slow"] } })
  )
  const release = yield* Deferred.make<void>()
  const { layer: launcher } = yield* makeSimulatedLauncher
  const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
  const host = HostServicesLive({
    dataDir,
    modulesDir,
    inProcess: new Map([["slow", () => Effect.as(Deferred.await(release), { decision: "allow" })]])
  }).pipe(Layer.provide(Layer.mergeAll(launcher, scriptedModuleClient(behaviour), LoopbackPortsLive)))
  const context = yield* Layer.build(host)
  const control = yield* Effect.provide(ControlApi, context)
  const port = Number(new URL(control.url).port)
  const token = Fs.readFileSync(control.tokenFile, "utf8").trim()
  return { port, token, release, server: control.server }
}).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {}))))

const envelope = JSON.stringify({ id: "e-1", hook: "ingress", subject: "alice", payload: {} })

describe("control API: the operator keeps control under load", () => {
  it.scopedLive("answers an operator's GET /v1/components at once with 80 idle connections and 200 slow hook calls open", () =>
    Effect.gen(function*() {
      const { port, token, release, server } = yield* hostWithSlowHook
      const auth = { authorization: `Bearer ${token}` }
      const idle = yield* Effect.promise(() => Promise.all(Array.from({ length: 80 }, () => connect(port))))
      let answered = 0
      const hooks = Array.from({ length: 200 }, () =>
        request(port, "/v1/hooks/ingress/invoke", { method: "POST", headers: auth, body: envelope, timeoutMs: 15_000 }).finally(() => {
          answered++
        }))
      // The burst has been dealt with: every hook call is either running or already refused (this
      // process is the clients too, so the operator is measured after, not behind, the burst).
      yield* Effect.promise(() =>
        waitUntil(async () => answered + (await Effect.runPromise(server.metrics)).in_flight >= hooks.length, 10_000))

      const started = Date.now()
      const operator = yield* Effect.promise(() => request(port, "/v1/components", { headers: auth }))
      expect(operator.status).toBe(200)
      // The hook load is real: hook calls are running while the operator is served.
      expect((yield* server.metrics).in_flight).toBeGreaterThan(0)
      expect(JSON.parse(operator.body)).toEqual({ components: expect.any(Array) })
      expect(Date.now() - started).toBeLessThan(1_000)
      // A command is answered under load too (an in-process component has no process to restart: 409).
      const restart = yield* Effect.promise(() => request(port, "/v1/components/slow/restart", { method: "POST", headers: auth }))
      expect(restart.status).toBe(409)

      yield* Deferred.succeed(release, undefined)
      const responses = yield* Effect.promise(() => Promise.all(hooks))
      // Every hook call got an answer: run, or refused at once (503), never left hanging.
      expect(responses.every((response) => response.status === 200 || response.status === 503)).toBe(true)
      expect(responses.filter((response) => response.status === 200).length).toBeGreaterThan(0)
      for (const socket of idle) socket.destroy()
    }))
})

describe("control API: bodies bounded before they are read", () => {
  it.scopedLive("answers 401 to an unauthenticated large body without waiting for it, and closes", () =>
    Effect.gen(function*() {
      const { port } = yield* hostWithSlowHook
      const socket = yield* Effect.promise(() => connect(port))
      socket.write("POST /v1/hooks/ingress/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
      const written = streamChunkedBody(socket, 1024 * 1024 * 1024)
      const { data, closed, elapsedMs } = yield* Effect.promise(() => readUntilClose(socket, 3_000))
      socket.destroy()
      expect(closed).toBe(true)
      expect(elapsedMs).toBeLessThan(1_500)
      const response = parseResponse(data)
      expect(response.status).toBe(401)
      expect(response.headers["connection"]).toBe("close")
      expect(yield* Effect.promise(() => written)).toBeLessThan(64 * 1024 * 1024)
    }))

  it.scopedLive("answers 413 with Connection: close to an authenticated chunked body past the limit, and closes", () =>
    Effect.gen(function*() {
      const { port, token } = yield* hostWithSlowHook
      const socket = yield* Effect.promise(() => connect(port))
      socket.write(`POST /v1/hooks/ingress/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n`)
      const written = streamChunkedBody(socket, 1024 * 1024 * 1024)
      const { data, closed, elapsedMs } = yield* Effect.promise(() => readUntilClose(socket, 3_000))
      socket.destroy()
      expect(closed).toBe(true)
      expect(elapsedMs).toBeLessThan(1_500)
      const response = parseResponse(data)
      expect(response.status).toBe(413)
      expect(response.headers["connection"]).toBe("close")
      expect(yield* Effect.promise(() => written)).toBeLessThan(64 * 1024 * 1024)
    }))
})

describe("control API: malformed paths", () => {
  it.scopedLive("answers 400 to a malformed path, never 500, and five of them leave /readyz green", () =>
    Effect.gen(function*() {
      const { port, token, server } = yield* hostWithSlowHook
      const auth = { authorization: `Bearer ${token}` }
      for (let i = 0; i < 5; i++) {
        const response = yield* Effect.promise(() => request(port, "/v1/components/%E0%A4%A", { headers: auth }))
        expect(response.status).toBe(400)
        expect(JSON.parse(response.body)).toMatchObject({ error: "bad_path" })
      }
      const start = yield* Effect.promise(() => request(port, "/v1/components/%E0%A4%A/start", { method: "POST", headers: auth }))
      expect(start.status).toBe(400)
      expect((yield* Effect.promise(() => request(port, "/readyz"))).status).toBe(200)
      expect((yield* server.metrics).handler_errors_total).toBe(0)
      // An id that decodes is looked up as one: unknown, 404.
      expect((yield* Effect.promise(() => request(port, "/v1/components/no%20such", { headers: auth }))).status).toBe(404)
    }))

  it.scopedLive("keys route metrics by template: ids never become route labels", () =>
    Effect.gen(function*() {
      const { port, token } = yield* hostWithSlowHook
      const auth = { authorization: `Bearer ${token}` }
      for (const id of ["a", "b", "c"]) yield* Effect.promise(() => request(port, `/v1/components/${id}`, { headers: auth }))
      yield* Effect.promise(() => request(port, "/no/such/path"))
      const metrics = (yield* Effect.promise(() => request(port, "/metrics", { headers: auth }))).body
      const controlRoutes = metrics.split("\n").filter((line) => line.includes("server=\"control\"") && line.includes("route="))
      expect(controlRoutes.some((line) => line.includes("route=\"/v1/components/{id}\""))).toBe(true)
      expect(controlRoutes.some((line) => line.includes("route=\"(unknown)\""))).toBe(true)
      expect(controlRoutes.some((line) => line.includes("route=\"/v1/components/a\""))).toBe(false)
      expect(controlRoutes.some((line) => line.includes("route=\"/no/such/path\""))).toBe(false)
    }))
})

describe("control API config", () => {
  it("refuses max_hook_invocations that would leave operators no capacity of their own", () => {
    const decode = Schema.decodeUnknownEither(HostConfig, { errors: "all" })
    const refused = decode({ host: { control: { max_connections: 8, max_hook_invocations: 8 } } })
    expect(Either.isLeft(refused) ? parseIssueLines(refused.left).join("; ") : "accepted").toContain(
      "max_hook_invocations (8) must be smaller than max_connections (8)"
    )
    const accepted = decode({ host: { control: { max_connections: 8 } } })
    expect(Either.isRight(accepted) ? hookInvocationPermits(accepted.right.host.control) : 0).toBe(4)
  })
})
