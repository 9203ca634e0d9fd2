/**
 * A real host (`npm run build` first) forwards a hook envelope it only passes on as the bytes the
 * caller sent, not re-encoded; an envelope decoding changed (a key dropped) or a `modify`d payload is
 * encoded afresh.
 */
import * as Http from "node:http"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeDataDir, removeDataDirs, startHost } from "../../support/hostProcess.js"

afterAll(removeDataDirs)

/** A module on loopback that records each request body and answers the decision `answer` gives. */
const startRecordingModule = (answer: (body: string) => unknown) =>
  Effect.acquireRelease(
    Effect.async<{ readonly endpoint: string; readonly bodies: Array<string>; readonly server: Http.Server }>((resume) => {
      const bodies: Array<string> = []
      const server = Http.createServer((request, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          bodies.push(body)
          response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer(body)))
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ endpoint: `http://127.0.0.1:${port}`, bodies, server }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  )

const post = (url: string, token: string, body: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body })
    return { status: response.status, body: await response.json() as { readonly decision: { readonly decision: string } } }
  })

describe("a hook envelope the host only forwards", () => {
  it.scopedLive("reaches the module as the caller's bytes; a changed envelope is encoded afresh", () =>
    Effect.gen(function*() {
      const first = yield* startRecordingModule(() => ({ decision: "modify", payload: { rewritten: true } }))
      const second = yield* startRecordingModule(() => ({ decision: "allow" }))
      const host = yield* startHost(makeDataDir({
        "50-forward.json": {
          components: {
            "fwd.first": { kind: "local_http_json", http: { endpoint: first.endpoint } },
            "fwd.second": { kind: "local_http_json", http: { endpoint: second.endpoint } }
          },
          hooks: { forward: ["fwd.first", "fwd.second"] }
        }
      }))
      const url = `${host.url}/v1/hooks/forward/invoke`
      // Spacing and key order no encoder of the parsed object would produce.
      const sent = `{ "payload" : {"b":1,  "a":[1, 2]}, "subject":"user:1", "hook":"forward", "id":"fwd-1" }`
      const answer = yield* post(url, host.token, sent)
      expect(answer.status).toBe(200)
      expect(answer.body.decision.decision).toBe("modify")
      expect(first.bodies).toEqual([sent])
      // The second step sees the modified payload: a new envelope, encoded by the host.
      expect(JSON.parse(second.bodies[0] ?? "null")).toEqual({ id: "fwd-1", hook: "forward", subject: "user:1", payload: { rewritten: true } })

      // An unknown key is dropped by decoding, so the module gets the decoded envelope, not the bytes.
      const withExtra = `{"id":"fwd-2","hook":"forward","subject":"user:1","payload":1,"extra":"dropped"}`
      expect((yield* post(url, host.token, withExtra)).status).toBe(200)
      expect(JSON.parse(first.bodies[1] ?? "null")).toEqual({ id: "fwd-2", hook: "forward", subject: "user:1", payload: 1 })
      yield* Effect.promise(() => host.stop("SIGTERM"))
    }), 60_000)
})
