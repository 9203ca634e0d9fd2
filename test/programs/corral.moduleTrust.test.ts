import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, type HostProcess, makeDataDir, removeDataDirs, startHost } from "../support/hostProcess.js"
import { otherUser, runAs } from "../support/otherUser.js"
import { cmdlineOf, descendantsOf, environOf, tcpListenPortsOf } from "../support/procfs.js"

afterAll(removeDataDirs)

interface ComponentsBody {
  readonly components: ReadonlyArray<{ readonly id: string; readonly phase: string; readonly endpoint: string | null }>
}

interface Reply {
  readonly status: number
  readonly body: unknown
}

/** One request to a module at `endpoint` (`http://…` or `unix:/…`), with `Bearer token` unless undefined. */
const moduleRequest = (endpoint: string, method: string, path: string, token?: string, body?: unknown): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const target = endpoint.startsWith("unix:")
      ? { socketPath: endpoint.slice("unix:".length) }
      : { host: new URL(endpoint).hostname, port: Number(new URL(endpoint).port) }
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const request = Http.request({
      ...target,
      method,
      path,
      timeout: 5_000,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(data === undefined ? {} : { "content-type": "application/json", "content-length": data.length })
      }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        resolve({ status: response.statusCode ?? 0, body: text.length > 0 ? JSON.parse(text) as unknown : null })
      })
    })
    request.on("timeout", () => request.destroy(new Error(`${method} ${endpoint}${path}: no answer within 5 s`)))
    request.on("error", reject)
    request.end(data)
  })

const endpoints = (host: HostProcess) =>
  Effect.promise(() => control(host, "GET", "/v1/components")).pipe(
    Effect.map((reply) => {
      const found = new Map((reply.body as ComponentsBody).components.map((c) => [c.id, c.endpoint ?? ""]))
      return { dator: found.get("middleware.dator") ?? "", arca: found.get("middleware.arca") ?? "" }
    })
  )

/** The module process (the interpreter running `script`) under the host, and the token in its environment. */
const moduleProcess = (host: HostProcess, script: string) => {
  const pid = descendantsOf(host.child.pid ?? 0).find((p) => cmdlineOf(p).includes(script)) ?? 0
  return { pid, token: environOf(pid)["CORRAL_MODULE_TOKEN"] ?? "" }
}

const invoke = (host: HostProcess, envelope: Record<string, unknown>) =>
  Effect.promise(() => control(host, "POST", "/v1/hooks/ingress/invoke", envelope))

const filesUnder = (dir: string): ReadonlyArray<string> =>
  Fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => Path.join(entry.parentPath, entry.name))

const other = otherUser()
if ("skip" in other) console.log(`skipping the second-user checks of the module trust tests: ${other.skip}`)

describe("corral up: only the host commands its modules", () => {
  it.scopedLive("a bundled module answers 401 to init, invoke and its archive without the launch token, or with a wrong one", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir()
      const host = yield* startHost(dataDir)
      const { arca, dator } = yield* endpoints(host)
      const datorToken = moduleProcess(host, "dator.py").token
      const arcaToken = moduleProcess(host, "arca.py").token
      expect(datorToken).toMatch(/^[0-9a-f]{64}$/)
      expect(arcaToken).toMatch(/^[0-9a-f]{64}$/)
      expect(arcaToken).not.toBe(datorToken)

      expect((yield* invoke(host, { id: "before", subject: "alice", payload: {} })).status).toBe(200)
      const forgedPolicy = { type: "middleware-init", config: { allow_subjects: [], deny_subjects: ["*"] } }
      const forged = { id: "forged", hook: "ingress", subject: "mallory", payload: {} }
      // No token, a wrong one, and the other module's: each module knows only its own.
      for (const [arcaTry, datorTry] of [[undefined, undefined], ["0".repeat(64), "0".repeat(64)], [datorToken, arcaToken]] as const) {
        expect((yield* Effect.promise(() => moduleRequest(arca, "GET", "/v1/archive?subject=alice", arcaTry))).status).toBe(401)
        expect((yield* Effect.promise(() => moduleRequest(arca, "POST", "/v1/middleware/invoke", arcaTry, forged))).status).toBe(401)
        expect((yield* Effect.promise(() => moduleRequest(dator, "POST", "/v1/middleware/init", datorTry, forgedPolicy))).status).toBe(401)
        expect((yield* Effect.promise(() => moduleRequest(dator, "POST", "/v1/middleware/invoke", datorTry, forged))).status).toBe(401)
      }
      expect((yield* Effect.promise(() => moduleRequest(dator, "GET", "/readyz"))).status).toBe(200)
      expect((yield* Effect.promise(() => moduleRequest(dator, "GET", "/healthz"))).status).toBe(200)

      // The forged init changed nothing: the host's hook call still allows a real subject, end to end.
      const after = yield* invoke(host, { id: "after", subject: "alice", payload: {} })
      expect(after.status).toBe(200)
      expect((after.body as { decision: { decision: string } }).decision.decision).toBe("allow")
      const archive = yield* Effect.promise(() => moduleRequest(arca, "GET", "/v1/archive?subject=alice", arcaToken))
      expect((archive.body as { records: ReadonlyArray<{ envelope: { id: string } }> }).records.map((r) => r.envelope.id)).toEqual(["after", "before"])

      // The token is in no argv, no log and no trace.
      for (const pid of [host.child.pid ?? 0, ...descendantsOf(host.child.pid ?? 0)]) expect(cmdlineOf(pid)).not.toContain(datorToken)
      for (const file of [...filesUnder(Path.join(dataDir, "logs")), ...filesUnder(Path.join(dataDir, "trace"))]) {
        expect(Fs.readFileSync(file, "utf8")).not.toContain(datorToken)
      }
      expect(host.stderr()).not.toContain(datorToken)
    }))

  it.scopedLive("Arca archives an envelope id once, and a 100,000-deep envelope is a 400 too_deep at the control API", () =>
    Effect.gen(function*() {
      const host = yield* startHost(makeDataDir())
      const recordOf = (reply: { body: unknown }) =>
        (reply.body as { decision: { annotations: Record<string, unknown> } }).decision.annotations["arca.record_id"]
      const first = yield* invoke(host, { id: "twice", subject: "bob", payload: { n: 1 } })
      const second = yield* invoke(host, { id: "twice", subject: "bob", payload: { n: 2 } })
      expect(recordOf(second)).toBe(recordOf(first))
      const { arca } = yield* endpoints(host)
      const archive = yield* Effect.promise(() => moduleRequest(arca, "GET", "/v1/archive?subject=bob", moduleProcess(host, "arca.py").token))
      expect((archive.body as { count: number }).count).toBe(1)

      const deep = `{"id":"deep","subject":"bob","payload":${"[".repeat(100_000)}${"]".repeat(100_000)}}`
      const refused = yield* Effect.promise(() =>
        fetch(`${host.url}/v1/hooks/ingress/invoke`, { method: "POST", headers: { authorization: `Bearer ${host.token}` }, body: deep })
          .then(async (response) => ({ status: response.status, body: await response.json() as { error: string; message: string } }))
      )
      expect(refused.status).toBe(400)
      expect(refused.body.error).toBe("too_deep")
      expect(refused.body.message).toContain("64")
      expect((yield* invoke(host, { id: "later", subject: "bob", payload: {} })).status).toBe(200)
      expect((yield* Effect.promise(() => fetch(`${host.url}/readyz`))).status).toBe(200)
    }))

  it.scopedLive.skipIf("skip" in other)("another local user cannot read a module's token from /proc/<pid>/environ", () =>
    Effect.gen(function*() {
      if ("skip" in other) return
      const host = yield* startHost(makeDataDir())
      const { pid, token } = moduleProcess(host, "dator.py")
      expect(token).toMatch(/^[0-9a-f]{64}$/)
      const read = runAs(other, "cat", [`/proc/${pid}/environ`])
      expect(read.status).not.toBe(0)
      expect(read.stdout).not.toContain(token)
      expect(read.stderr).toContain("Permission denied")
    }))

  it.scopedLive("http.transport unix: no module listens on a TCP port, sockets sit in 0700 directories, hooks flow end to end", () =>
    Effect.gen(function*() {
      // Dator runs as the host's user (its socket in run/modules/); Arca stays restricted (on a root
      // host it runs as its own user, its socket in its own work dir).
      const dataDir = makeDataDir({
        "50-unix.json": {
          components: {
            "middleware.dator": { http: { transport: "unix" }, sandbox_profile: "none" },
            "middleware.arca": { http: { transport: "unix" } }
          }
        }
      })
      const host = yield* startHost(dataDir)
      expect(host.up.components.map((c) => [c.id, c.phase])).toEqual([["middleware.arca", "ready"], ["middleware.dator", "ready"]])
      const { arca, dator } = yield* endpoints(host)
      expect(dator).toBe(`unix:${Path.join(dataDir, "run", "modules", "middleware.dator.sock")}`)
      expect(arca.startsWith(`unix:${dataDir}/`)).toBe(true)
      for (const endpoint of [arca, dator]) {
        const socketPath = endpoint.slice("unix:".length)
        expect(Fs.lstatSync(socketPath).isSocket()).toBe(true)
        expect(Fs.statSync(Path.dirname(socketPath)).mode & 0o777).toBe(0o700)
      }
      expect(tcpListenPortsOf(descendantsOf(host.child.pid ?? 0))).toEqual([])

      const invoked = yield* invoke(host, { id: "u1", subject: "carol", payload: {} })
      expect(invoked.status).toBe(200)
      expect((invoked.body as { steps: ReadonlyArray<{ outcome: string }> }).steps.map((s) => s.outcome)).toEqual(["allow", "allow"])
      expect((yield* Effect.promise(() => moduleRequest(arca, "GET", "/v1/archive?subject=carol"))).status).toBe(401)
      const archive = yield* Effect.promise(() => moduleRequest(arca, "GET", "/v1/archive?subject=carol", moduleProcess(host, "arca.py").token))
      expect((archive.body as { count: number }).count).toBe(1)

      if (!("skip" in other)) {
        const connect = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"
        for (const endpoint of [arca, dator]) {
          expect(runAs(other, "/usr/bin/python3", ["-c", connect, endpoint.slice("unix:".length)]).status).not.toBe(0)
        }
      }
      expect(yield* Effect.promise(() => host.stop("SIGTERM"))).toBe(0)
      expect(Fs.existsSync(dator.slice("unix:".length))).toBe(false)
    }))
})
