/**
 * A host for control API tests: the real Layer graph and control server on 127.0.0.1, the bundled Dator
 * and Arca on the simulated launcher with scripted module answers (live clock), an in-process component,
 * and short stream timings. Plus a streaming HTTP reader for event streams and log follows.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Layer, Logger, Ref } from "effect"
import type { StreamTiming } from "../../../../src/layers/host/control/ControlDependencies.js"
import { HostServicesLive } from "../../../../src/layers/host/HostLive.js"
import { makeSimulatedLauncher } from "../../../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import { LoopbackPortsLive } from "../../../../src/layers/system/LoopbackPorts.js"
import { ControlApi } from "../../../../src/services/host/ControlApi.js"
import { HostEvents } from "../../../../src/services/host/HostEvents.js"
import { Supervisor } from "../../../../src/services/host/Supervisor.js"
import { scriptedModuleClient } from "../../../support/scriptedModules.js"

const bundledModules = Path.resolve(import.meta.dirname, "../../../../modules")

/** Stream timing short enough for tests. */
export const testTiming: StreamTiming = { heartbeatMs: 200, maxStreamMs: 2_000, followPollMs: 50 }

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Starts a host with `operatorConfig` as its one operator fragment; Dator and Arca are ready when it returns. */
export const startControlHost = (operatorConfig: unknown = {}) =>
  Effect.gen(function*() {
    const dataDir = yield* tempDir("corral-controlapi-")
    Fs.mkdirSync(Path.join(dataDir, "config"), { recursive: true })
    Fs.writeFileSync(Path.join(dataDir, "config", "10-test.json"), JSON.stringify(operatorConfig))
    const { layer: launcher } = yield* makeSimulatedLauncher
    const behaviour = yield* Ref.make({ ready: true, healthy: true, contractVersion: "1" })
    const host = HostServicesLive({
      dataDir,
      modulesDir: bundledModules,
      inProcess: new Map([["allow", () => Effect.succeed({ decision: "allow" as const })]]),
      controlStreams: testTiming
    }).pipe(Layer.provide(Layer.mergeAll(launcher, scriptedModuleClient(behaviour), LoopbackPortsLive)))
    const context = yield* Layer.build(host)
    const control = yield* Effect.provide(ControlApi, context)
    const supervisor = yield* Effect.provide(Supervisor, context)
    const events = yield* Effect.provide(HostEvents, context)
    yield* supervisor.startAll
    const port = Number(new URL(control.url).port)
    const token = Fs.readFileSync(control.tokenFile, "utf8").trim()
    const auth = { authorization: `Bearer ${token}` }
    /** One request with the token. */
    const call = (path: string, options: Omit<FetchOptions, "port"> = {}) =>
      Effect.promise(() => fetchText(port, path, { ...options, headers: { ...auth, ...options.headers } }))
    /** One request without the token. */
    const open = (path: string, options: Omit<FetchOptions, "port"> = {}) => Effect.promise(() => fetchText(port, path, options))
    return { dataDir, port, token, auth, control, supervisor, events, call, open }
  }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(() => {}))))

/** A request's method, headers and body. */
export interface FetchOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string
}

/** What a whole answer was. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

/** One request (no redirect following), its body read whole, bounded by 10 s. */
export const fetchText = async (port: number, path: string, options: FetchOptions = {}): Promise<Answer> => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: options.method ?? "GET",
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
    redirect: "manual",
    signal: AbortSignal.timeout(10_000)
  })
  return { status: response.status, headers: response.headers, body: await response.text() }
}

/** What a streaming read saw: status, headers, the text so far, and whether the server ended the response. */
export interface StreamRead {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
  readonly ended: boolean
}

/**
 * GETs `path` and reads its body until `until(text)` holds, the server ends it, or `timeoutMs` passes;
 * `whileOpen` runs once the headers are in (to make something happen while the stream is read).
 */
export const readStream = (
  port: number,
  path: string,
  headers: Record<string, string>,
  options: { readonly until?: (text: string) => boolean; readonly timeoutMs: number; readonly whileOpen?: () => Promise<unknown> }
): Promise<StreamRead> =>
  new Promise((resolve, reject) => {
    const req = Http.get({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      let text = ""
      let done = false
      const finish = (ended: boolean) => {
        if (done) return
        done = true
        clearTimeout(timer)
        req.destroy()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, ended })
      }
      const timer = setTimeout(() => finish(false), options.timeoutMs)
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        text += chunk
        if (options.until?.(text) === true) finish(false)
      })
      res.on("end", () => finish(true))
      res.on("error", () => finish(false))
      options.whileOpen?.().catch(reject)
    })
    req.on("error", reject)
  })
