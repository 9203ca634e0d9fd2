import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { FrameDecoder } from "../../../src/layers/broker/BrokerFraming.js"
import { encodeReply, replyJson } from "../../../src/layers/broker/ReplyEncoding.js"
import { AdminVerb, BrokerErrorCode, BrokerReply, maxFrameBytes } from "../../../src/services/broker/BrokerProtocol.js"

/** What the Schema writes for `reply`: the contract the hand-written encoder must match byte for byte. */
const schemaJson = (reply: BrokerReply): string => JSON.stringify(Schema.encodeSync(BrokerReply)(reply))

const decodeReply = Schema.decodeUnknownSync(BrokerReply)

/** Every reply kind the broker sends: each hello.ok endpoint, each admin verb, each error code, with and without the optional fields. */
const everyReplyKind: ReadonlyArray<BrokerReply> = [
  {
    type: "hello.ok",
    request_id: "r-1",
    service: "redis",
    version: "7.2",
    endpoint: { kind: "unix", path: "/run/corral/redis.sock" },
    instance: "redis-7.2-1",
    launched: true
  },
  {
    type: "hello.ok",
    service: "pg",
    version: "16",
    endpoint: { kind: "tcp", host: "127.0.0.1", port: 5432 },
    instance: "pg-16-1",
    launched: false
  },
  {
    type: "hello.ok",
    request_id: "quote \" backslash \\ newline \n tab \t nul \u0000 é ☃ 𝄞",
    service: "a-b",
    version: "1.0.0+build",
    endpoint: { kind: "unix", path: "/tmp/dir with spaces/ü.sock" },
    instance: "a-b-1.0.0-00ff",
    launched: false
  },
  ...AdminVerb.literals.flatMap((verb): ReadonlyArray<BrokerReply> => [
    { type: `admin.${verb}`, body: { status: "ok", nested: [1, 2.5, null, true, "x"], empty: {} } },
    { type: `admin.${verb}`, request_id: `a-${verb}`, body: null }
  ]),
  ...BrokerErrorCode.literals.flatMap((code): ReadonlyArray<BrokerReply> => [
    { type: "error", code, message: `a ${code} with "quotes" and ünïcode` },
    { type: "error", request_id: `e-${code}`, code, message: "retry later", retry_after_ms: 0 },
    { type: "error", code, message: "", retry_after_ms: 1_500 }
  ])
]

describe("hand-written reply encoding", () => {
  it("writes exactly the Schema's JSON for every reply kind, and that JSON decodes with the reply Schema", () => {
    for (const reply of everyReplyKind) {
      const json = replyJson(reply)
      expect(json).toBe(schemaJson(reply))
      expect(decodeReply(JSON.parse(json))).toEqual(reply)
    }
  })

  it("frames each reply as a 4-byte big-endian length then that JSON in UTF-8", () => {
    for (const reply of everyReplyKind) {
      const frame = encodeReply(reply)
      const body = Buffer.from(schemaJson(reply), "utf8")
      expect(new DataView(frame.buffer, frame.byteOffset).getUint32(0, false)).toBe(body.length)
      expect(Buffer.from(frame.subarray(4)).equals(body)).toBe(true)
      const [decoded, ...rest] = new FrameDecoder().push(frame)
      expect(rest).toHaveLength(0)
      expect(decoded === undefined ? undefined : decodeReply(Either.getOrThrow(decoded))).toEqual(reply)
    }
  })

  it("answers bad_frame instead of a reply over the frame limit (an enormous echoed request_id)", () => {
    const frame = encodeReply({ type: "error", request_id: "x".repeat(maxFrameBytes), code: "unsupported", message: "no" })
    const [decoded] = new FrameDecoder().push(frame)
    expect(decoded === undefined ? undefined : Either.getOrThrow(decoded)).toEqual({
      type: "error",
      code: "bad_frame",
      message: "reply too large (request_id too long?)"
    })
  })
})
