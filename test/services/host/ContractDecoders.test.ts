import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { decodeDecisionFast, decodeEnvelopeFast } from "../../../src/services/host/ContractDecoders.js"
import { MiddlewareDecision, WorkflowEnvelope } from "../../../src/services/host/MiddlewareContract.js"

const bySchema = Schema.decodeUnknownEither(MiddlewareDecision)
const envelopeBySchema = Schema.decodeUnknownEither(WorkflowEnvelope)

/** Answers as modules send them (JSON text), good and bad. */
const jsonAnswers: ReadonlyArray<string> = [
  '{"decision":"allow"}',
  '{"decision":"allow","reason":"ok"}',
  '{"decision":"allow","reason":"ok","annotations":{"dator.remaining":3,"nested":{"a":[1,2]}}}',
  '{"annotations":{"x":null},"reason":"r","decision":"allow"}',
  '{"decision":"allow","annotations":{}}',
  '{"decision":"allow","extra":"dropped","payload":{"ignored":true}}',
  '{"decision":"deny","reason":"over quota"}',
  '{"decision":"deny","reason":""}',
  '{"decision":"deny","reason":"r","annotations":{"k":"v"}}',
  '{"decision":"modify","payload":{"text":"redacted"}}',
  '{"decision":"modify","payload":null}',
  '{"decision":"modify","payload":0,"reason":"r","annotations":{"a":1}}',
  '{"decision":"modify","payload":[1,"two"],"extra":1}',
  // Refused by both.
  "null",
  "[]",
  '[{"decision":"allow"}]',
  '"allow"',
  "42",
  "true",
  "{}",
  '{"decision":"ALLOW"}',
  '{"decision":"maybe"}',
  '{"decision":null}',
  '{"decision":"allow","reason":5}',
  '{"decision":"allow","reason":null}',
  '{"decision":"allow","annotations":[]}',
  '{"decision":"allow","annotations":null}',
  '{"decision":"allow","annotations":"x"}',
  '{"decision":"allow","annotations":{"__proto__":{"polluted":true}}}',
  '{"decision":"deny"}',
  '{"decision":"deny","reason":null}',
  '{"decision":"deny","reason":["a"]}',
  '{"decision":"modify"}',
  '{"decision":"modify","reason":"no payload"}',
  '{"decision":"modify","payload":{},"annotations":5}',
  '{"decision":"modify","payload":{},"reason":{}}'
]

/** Values JSON cannot carry, which the Schema still has an opinion on. */
const otherAnswers: ReadonlyArray<unknown> = [
  undefined,
  { decision: "allow", reason: undefined },
  { decision: "allow", annotations: undefined },
  { decision: "deny", reason: undefined },
  { decision: "modify", payload: undefined },
  { decision: "allow", annotations: new Map([["a", 1]]) },
  { decision: "allow", annotations: Object.create(null) },
  Object.assign(Object.create({ decision: "allow" }), {}),
  { decision: "allow", annotations: { [Symbol("s")]: 1, visible: 2 } }
]

const cases: ReadonlyArray<readonly [string, unknown]> = [
  ...jsonAnswers.map((text) => [text, JSON.parse(text) as unknown] as const),
  ...otherAnswers.map((value, index) => [`non-JSON case ${index}`, value] as const)
]

describe("decodeDecisionFast", () => {
  it.each(cases)("agrees with the MiddlewareDecision Schema on %s", (_name, answer) => {
    const fast = decodeDecisionFast(answer)
    const schema = bySchema(answer)
    if (fast !== undefined) {
      // Said valid: the Schema says so too, with the same value and the same key order.
      expect(Either.isRight(schema)).toBe(true)
      if (Either.isRight(schema)) {
        expect(fast).toStrictEqual(schema.right)
        expect(JSON.stringify(fast)).toBe(JSON.stringify(schema.right))
      }
    }
  })

  it("accepts every answer of the table the Schema accepts from JSON (the fast path is the common path)", () => {
    const accepted = jsonAnswers.filter((text) => Either.isRight(bySchema(JSON.parse(text))))
    expect(accepted.length).toBeGreaterThan(10)
    // The one a Schema-accepted JSON answer it leaves to the Schema: a `__proto__` annotation key.
    expect(accepted.filter((text) => decodeDecisionFast(JSON.parse(text)) === undefined)).toEqual(
      accepted.filter((text) => text.includes("__proto__"))
    )
  })

  it("refuses every answer the Schema refuses", () => {
    const refused = cases.filter(([, answer]) => Either.isLeft(bySchema(answer)))
    expect(refused.length).toBeGreaterThan(15)
    expect(refused.filter(([, answer]) => decodeDecisionFast(answer) !== undefined).map(([name]) => name)).toEqual([])
  })
})

/** Envelopes as callers send them (JSON text, `hook` already filled in), good and bad. */
const jsonEnvelopes: ReadonlyArray<string> = [
  '{"id":"e1","hook":"ingress","subject":"alice","payload":{"text":"hi"}}',
  '{"id":"e1","hook":"ingress","subject":"","payload":null}',
  '{"payload":[1],"subject":"s","hook":"h","id":"x"}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":0,"metadata":{"source":"cli","n":{"deep":[1]}},"deadline_ms":2000}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":"p","metadata":{}}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":"p","deadline_ms":1}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":"p","extra":true}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":"p","metadata":{"__proto__":{"x":1}}}',
  // Refused by both.
  "null",
  "[]",
  '"envelope"',
  "{}",
  '{"id":"","hook":"ingress","subject":"s","payload":1}',
  '{"id":"e1","hook":"","subject":"s","payload":1}',
  '{"id":7,"hook":"ingress","subject":"s","payload":1}',
  '{"id":"e1","hook":"ingress","subject":null,"payload":1}',
  '{"id":"e1","hook":"ingress","payload":1}',
  '{"id":"e1","hook":"ingress","subject":"s"}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"metadata":[]}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"metadata":null}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"metadata":"m"}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":0}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":-5}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":1.5}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":"100"}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":null}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":1e400}',
  '{"id":"e1","hook":"ingress","subject":"s","payload":1,"deadline_ms":9007199254740993}'
]

const otherEnvelopes: ReadonlyArray<unknown> = [
  undefined,
  { id: "e1", hook: "h", subject: "s", payload: undefined },
  { id: "e1", hook: "h", subject: "s", payload: 1, metadata: undefined },
  { id: "e1", hook: "h", subject: "s", payload: 1, deadline_ms: undefined },
  { id: "e1", hook: "h", subject: "s", payload: 1, deadline_ms: Number.NaN },
  Object.assign(Object.create({ id: "e1", hook: "h", subject: "s", payload: 1 }), {})
]

const envelopeCases: ReadonlyArray<readonly [string, unknown]> = [
  ...jsonEnvelopes.map((text) => [text, JSON.parse(text) as unknown] as const),
  ...otherEnvelopes.map((value, index) => [`non-JSON envelope ${index}`, value] as const)
]

describe("decodeEnvelopeFast", () => {
  it.each(envelopeCases)("agrees with the WorkflowEnvelope Schema on %s", (_name, body) => {
    const fast = decodeEnvelopeFast(body)
    const schema = envelopeBySchema(body)
    if (fast !== undefined) {
      expect(Either.isRight(schema)).toBe(true)
      if (Either.isRight(schema)) {
        expect(fast).toStrictEqual(schema.right)
        expect(JSON.stringify(fast)).toBe(JSON.stringify(schema.right))
      }
    }
  })

  it("accepts every JSON envelope of the table the Schema accepts, but one with a __proto__ metadata key", () => {
    const accepted = jsonEnvelopes.filter((text) => Either.isRight(envelopeBySchema(JSON.parse(text))))
    expect(accepted.length).toBeGreaterThan(6)
    expect(accepted.filter((text) => decodeEnvelopeFast(JSON.parse(text)) === undefined)).toEqual(
      accepted.filter((text) => text.includes("__proto__"))
    )
  })

  it("refuses every envelope the Schema refuses", () => {
    const refused = envelopeCases.filter(([, body]) => Either.isLeft(envelopeBySchema(body)))
    expect(refused.length).toBeGreaterThan(15)
    expect(refused.filter(([, body]) => decodeEnvelopeFast(body) !== undefined).map(([name]) => name)).toEqual([])
  })
})
