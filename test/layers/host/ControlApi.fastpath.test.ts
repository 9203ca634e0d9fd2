/**
 * The hook invocation fast path through the real control server (the real module client, a fake module on
 * 127.0.0.1): what each invocation costs in fibers, and that every answer still carries the guarantees.
 * Fibers are counted by Effect's global fiber id counter, which every fiber started in this process takes
 * an id from (the server's request fibers run on a runtime without the caller's supervisor).
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberId, Layer, Logger } from "effect"
import { HostServicesLive } from "../../../src/layers/host/HostLive.js"
import { makeSimulatedLauncher } from "../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { ModuleClientLive } from "../../../src/layers/host/ModuleClient.js"
import { LoopbackPortsLive } from "../../../src/layers/system/LoopbackPorts.js"
import { ControlApi } from "../../../src/services/host/ControlApi.js"
import { maxJsonDepth } from "../../../src/services/system/JsonDepth.js"
import { answerJson, startFakeModule } from "../../support/fakeModule.js"

/** Fibers started in this process so far (each takes the next id). */
const fibersStarted = (): number => FiberId.unsafeMake().id

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-fastpath-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

interface Answer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** One request on a kept-alive agent, bounded by 10 s. */
const send = (agent: Http.Agent, port: number, path: string, headers: Record<string, string>, body: string): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const request = Http.request({ agent, host: "127.0.0.1", port, path, method: "POST", headers, timeout: 10_000 }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }))
    })
    request.on("timeout", () => request.destroy(new Error(`no answer to POST ${path} within 10 s`)))
    request.on("error", reject)
    request.end(body)
  })

/** A host whose one hook `fast` calls a fake module (allow at once) through the real module client. */
const startHost = Effect.gen(function*() {
  const module = yield* startFakeModule((_request, response) => answerJson(response, { decision: "allow" }))
  const dataDir = yield* tempDir
  const modulesDir = yield* tempDir
  Fs.mkdirSync(Path.join(dataDir, "config"), { recursive: true })
  Fs.writeFileSync(
    Path.join(dataDir, "config", "10-test.json"),
    JSON.stringify({
      components: { "fast.echo": { kind: "local_http_json", http: { endpoint: module.endpoint } } },
      hooks: { fast: ["fast.echo"] }
    })
  )
  const { layer: launcher } = yield* makeSimulatedLauncher
  const host = HostServicesLive({ dataDir, modulesDir }).pipe(Layer.provide(Layer.mergeAll(launcher, ModuleClientLive, LoopbackPortsLive)))
  const control = yield* Effect.provide(ControlApi, yield* Layer.build(host))
  const port = Number(new URL(control.url).port)
  const token = Fs.readFileSync(control.tokenFile, "utf8").trim()
  const agent = new Http.Agent({ keepAlive: true, maxSockets: 1 })
  yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
  return { module, port, token, agent }
}).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {}))))

const envelope = (id: number) => JSON.stringify({ id: `env-${id}`, hook: "fast", subject: "user:1", payload: { n: id } })

/** Sends `count` requests one after another; answers what they were and how many fibers started meanwhile. */
const measure = (count: number, next: (i: number) => Promise<Answer>) =>
  Effect.promise(async () => {
    const answers: Array<Answer> = []
    const before = fibersStarted()
    for (let i = 0; i < count; i++) answers.push(await next(i))
    // Less the id this call itself takes.
    return { answers, fibers: fibersStarted() - before - 1 }
  })

describe("POST /v1/hooks/{hook}/invoke on the control server's direct path", () => {
  it.scopedLive("runs each invocation in at most one fiber, and refuses without starting any", () =>
    Effect.gen(function*() {
      const { agent, module, port, token } = yield* startHost
      const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" }
      // Warm: the first call opens the module connection and fills the caches.
      expect((yield* Effect.promise(() => send(agent, port, "/v1/hooks/fast/invoke", auth, envelope(0)))).status).toBe(200)

      const served = yield* measure(40, (i) => send(agent, port, "/v1/hooks/fast/invoke", auth, envelope(i + 1)))
      expect(served.answers.map((answer) => answer.status)).toEqual(Array.from({ length: 40 }, () => 200))
      expect(served.answers.every((answer) => JSON.parse(answer.body).decision.decision === "allow")).toBe(true)
      expect(module.requests).toHaveLength(41)
      // One fiber for the hook run itself; a few more for anything else the host does meanwhile. Before:
      // two each (the request fiber, and one more run synchronously to cache the body reader).
      expect(served.fibers).toBeLessThanOrEqual(40 + 4)

      // Refused before the body is read, in plain code: no fiber at all.
      const refusals: ReadonlyArray<readonly [number, string, Record<string, string>]> = [
        [401, "/v1/hooks/fast/invoke", { authorization: "Bearer not-the-token" }],
        [401, "/v1/hooks/fast/invoke", {}],
        [403, "/v1/hooks/fast/invoke", { ...auth, host: "evil.example" }],
        [400, "/v1/hooks/%E0%A4%A/invoke", auth]
      ]
      const refusalAt = (i: number) => {
        const refusal = refusals[i % refusals.length]
        if (refusal === undefined) throw new Error(`no refusal ${i}`)
        return refusal
      }
      const refused = yield* measure(40, (i) => send(agent, port, refusalAt(i)[1], refusalAt(i)[2], envelope(i)))
      expect(refused.answers.map((answer) => answer.status)).toEqual(Array.from({ length: 40 }, (_, i) => refusalAt(i)[0]))
      // Before: a request fiber for each, to answer what plain code can decide.
      expect(refused.fibers).toBeLessThanOrEqual(4)

      // A body that is no envelope: the one fiber reads the hook names (an unknown hook answers 404 first).
      // (An envelope only the Schema can word the error for costs the Schema's own fiber; not these.)
      const badBodies = ["{not json", `${"[".repeat(maxJsonDepth + 1)}${"]".repeat(maxJsonDepth + 1)}`, JSON.stringify({ id: "x", hook: "other", subject: "s", payload: {} })]
      const rejected = yield* measure(40, (i) => send(agent, port, "/v1/hooks/fast/invoke", auth, badBodies[i % badBodies.length] ?? ""))
      expect(rejected.answers.map((answer) => answer.status)).toEqual(Array.from({ length: 40 }, () => 400))
      // Before: two each (the request fiber, and one more run synchronously to cache the body reader).
      expect(rejected.fibers).toBeLessThanOrEqual(40 + 4)
      expect(module.requests).toHaveLength(41)
    }))

  it.scopedLive("every answer of the hook path is no-store, nosniff, unframable, without Referer", () =>
    Effect.gen(function*() {
      const { agent, port, token } = yield* startHost
      const auth = { authorization: `Bearer ${token}` }
      const answers = [
        yield* Effect.promise(() => send(agent, port, "/v1/hooks/fast/invoke", auth, envelope(1))),
        yield* Effect.promise(() => send(agent, port, "/v1/hooks/fast/invoke", {}, envelope(1))),
        yield* Effect.promise(() => send(agent, port, "/v1/hooks/nope/invoke", auth, envelope(1))),
        yield* Effect.promise(() => send(agent, port, "/v1/hooks/fast/invoke", auth, "[]"))
      ]
      expect(answers.map((answer) => answer.status)).toEqual([200, 401, 404, 400])
      for (const answer of answers) {
        expect({
          status: answer.status,
          type: answer.headers["content-type"],
          cache: answer.headers["cache-control"],
          nosniff: answer.headers["x-content-type-options"],
          frames: answer.headers["x-frame-options"],
          referrer: answer.headers["referrer-policy"],
          csp: answer.headers["content-security-policy"]
        }).toEqual({
          status: answer.status,
          type: "application/json",
          cache: "no-store",
          nosniff: "nosniff",
          frames: "DENY",
          referrer: "no-referrer",
          csp: "default-src 'none'; frame-ancestors 'none'"
        })
      }
    }))
})
