import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeModuleClient } from "../../../src/layers/host/ModuleClient.js"
import { bearerHeaders } from "../../../src/services/host/ModuleClient.js"
import { startHeaderModule } from "../../support/headerModule.js"

const limits = { timeoutMs: 2_000, maxResponseBytes: 65_536 }

describe("ModuleClientLive: credentials, Unix sockets, nesting", () => {
  it.scopedLive("sends the headers it is given, and no credential when given none", () =>
    Effect.gen(function*() {
      const module = yield* startHeaderModule("tcp")
      const client = yield* makeModuleClient()
      yield* client.postJson(module.endpoint, "/init", {}, limits, bearerHeaders("t0ken"))
      yield* client.get(module.endpoint, "/readyz", limits)
      expect(module.requests.map((r) => [r.path, r.headers.authorization])).toEqual([["/init", "Bearer t0ken"], ["/readyz", undefined]])
    }))

  it.scopedLive("reaches a module on a unix: endpoint, GET and POST", () =>
    Effect.gen(function*() {
      const module = yield* startHeaderModule("unix")
      expect(module.endpoint.startsWith("unix:/")).toBe(true)
      const client = yield* makeModuleClient()
      expect((yield* client.get(module.endpoint, "/readyz", limits)).status).toBe(200)
      const reply = yield* client.postJson(module.endpoint, "/invoke", { id: "x" }, limits, bearerHeaders("t0ken"))
      expect(reply).toEqual({ status: 200, body: { decision: "allow" } })
      expect(module.requests.map((r) => r.headers.authorization)).toEqual([undefined, "Bearer t0ken"])
    }))

  it.scopedLive("refuses a unix: endpoint that is not an absolute path, without a call", () =>
    Effect.gen(function*() {
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.get("unix:relative.sock", "/readyz", limits))
      expect(error).toMatchObject({ reason: "Unreachable" })
      expect(error.message).toContain("unix:/absolute/path")
    }))

  it.scopedLive("fails an answer nested deeper than 64 levels as BadJson instead of parsing it", () =>
    Effect.gen(function*() {
      const deep = `{"decision":"modify","payload":${"[".repeat(5_000)}${"]".repeat(5_000)}}`
      const module = yield* startHeaderModule("tcp", deep)
      const client = yield* makeModuleClient()
      const error = yield* Effect.flip(client.postJson(module.endpoint, "/invoke", {}, limits))
      expect(error).toMatchObject({ reason: "BadJson" })
      expect(error.message).toContain("deeper than 64")
    }))
})
