import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import {
  makeMiddlewareInit,
  MiddlewareDecision,
  ModuleReport,
  reportIncompatibility,
  WorkflowEnvelope
} from "../../../src/services/host/MiddlewareContract.js"

const decodeDecision = Schema.decodeUnknownEither(MiddlewareDecision)

describe("middleware contract (golden JSON)", () => {
  it("accepts the documented envelope and re-encodes it byte for byte", () => {
    const golden = '{"id":"env-1","hook":"ingress","subject":"alice","payload":{"text":"hi"},"metadata":{"source":"cli"},"deadline_ms":2000}'
    const decoded = Schema.decodeUnknownSync(WorkflowEnvelope)(JSON.parse(golden))
    expect(JSON.stringify(Schema.encodeSync(WorkflowEnvelope)(decoded))).toBe(golden)
  })

  it("rejects an envelope without id or with a bad deadline", () => {
    expect(Either.isLeft(Schema.decodeUnknownEither(WorkflowEnvelope)({ hook: "h", subject: "s", payload: 1 }))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(WorkflowEnvelope)({ id: "1", hook: "h", subject: "s", payload: 1, deadline_ms: -5 }))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(WorkflowEnvelope)({ id: "1", hook: "h", subject: "s" }))).toBe(true)
  })

  it("accepts exactly the three decisions", () => {
    for (const golden of [
      '{"decision":"allow"}',
      '{"decision":"allow","reason":"ok","annotations":{"dator.remaining":3}}',
      '{"decision":"deny","reason":"over quota"}',
      '{"decision":"modify","payload":{"text":"redacted"}}'
    ]) {
      const decoded = decodeDecision(JSON.parse(golden))
      expect(Either.isRight(decoded)).toBe(true)
      if (Either.isRight(decoded)) expect(JSON.stringify(Schema.encodeSync(MiddlewareDecision)(decoded.right))).toBe(golden)
    }
  })

  it("refuses anything else: never a silent pass", () => {
    for (const bad of [{ decision: "maybe" }, { decision: "deny" }, { decision: "modify" }, [], "allow", null, { decision: "allow", annotations: "x" }]) {
      expect(Either.isLeft(decodeDecision(bad))).toBe(true)
    }
  })

  it("builds middleware-init with the host's versions and the module's subtree", () => {
    expect(JSON.stringify(makeMiddlewareInit("middleware.dator", "dator", { quota: 1 }))).toBe(
      '{"type":"middleware-init","host_version":"0.1.0","middleware_contract_version":"1","host_api_version":"1","component_id":"middleware.dator","module_id":"dator","config":{"quota":1}}'
    )
  })

  it("validates a module report and names an incompatible contract version", () => {
    const report = Schema.decodeUnknownSync(ModuleReport)({
      name: "dator",
      description: "policy",
      capabilities: ["policy.subject"],
      middleware_contract_version: "2",
      host_api_version: "1",
      output_contracts: []
    })
    expect(reportIncompatibility(report)).toBe("module speaks middleware contract 2, this host speaks 1")
    expect(reportIncompatibility({ ...report, middleware_contract_version: "1" })).toBeUndefined()
  })
})
