import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { decodeRequest, encodeFrame, FrameDecoder, type FrameResult } from "../../../src/layers/broker/BrokerFraming.js"
import { AdminReply, AdminRequest, ErrorReply, HelloOk, HelloRequest, maxFrameBytes } from "../../../src/services/broker/BrokerProtocol.js"

const hex = (text: string): Uint8Array => Uint8Array.from(text.trim().split(/\s+/).map((byte) => Number.parseInt(byte, 16)))
const toHex = (bytes: Uint8Array): string => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ")
const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}
const header = (length: number): Uint8Array => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, length, false)
  return bytes
}
const frameOf = (value: unknown): Uint8Array => Either.getOrThrow(encodeFrame(value))
const values = (results: ReadonlyArray<FrameResult>): ReadonlyArray<unknown> => results.map((result) => Either.getOrThrow(result))
const failureOf = (results: ReadonlyArray<FrameResult>) => {
  const last = results[results.length - 1]
  if (last === undefined || Either.isRight(last)) throw new Error(`expected a frame error, got ${JSON.stringify(results)}`)
  return last.left
}

/** `{"type":"hello","service":"redis","protocol":1}` as a frame: 47 (0x2f) bytes of JSON behind its length. */
const helloRedisFrame = hex(`
  00 00 00 2f
  7b 22 74 79 70 65 22 3a 22 68 65 6c 6c 6f 22 2c 22 73 65 72 76 69 63 65 22 3a 22 72 65 64 69 73 22 2c
  22 70 72 6f 74 6f 63 6f 6c 22 3a 31 7d
`)

describe("encodeFrame", () => {
  it("writes a 4-byte big-endian length then the UTF-8 JSON (golden bytes)", () => {
    const frame = frameOf({ type: "hello", service: "redis", protocol: 1 })
    expect(toHex(frame)).toBe(toHex(helloRedisFrame))
  })

  it("counts UTF-8 bytes, not characters, in the length", () => {
    // "é" is 2 bytes, "😀" 4: the JSON `"é😀"` is 8 bytes.
    expect(toHex(frameOf("é😀"))).toBe("00 00 00 08 22 c3 a9 f0 9f 98 80 22")
  })

  it("accepts a body of exactly 65,536 bytes and refuses 65,537 as Oversize", () => {
    const fits = frameOf("x".repeat(maxFrameBytes - 2))
    expect(fits.length).toBe(4 + maxFrameBytes)
    expect(toHex(fits.subarray(0, 4))).toBe("00 01 00 00")
    const refused = encodeFrame("x".repeat(maxFrameBytes - 1))
    expect(Either.isLeft(refused) && refused.left.reason).toBe("Oversize")
  })

  it("refuses a value without a JSON form as InvalidJson", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic["self"] = cyclic
    for (const value of [undefined, cyclic, 1n]) {
      const refused = encodeFrame(value)
      expect(Either.isLeft(refused) && refused.left.reason).toBe("InvalidJson")
    }
  })
})

describe("FrameDecoder", () => {
  it("decodes the golden frame pushed whole", () => {
    const decoder = new FrameDecoder()
    expect(values(decoder.push(helloRedisFrame))).toEqual([{ type: "hello", service: "redis", protocol: 1 }])
    expect(decoder.pending()).toBe(0)
  })

  it("refuses a length of 0x00010001 as Oversize from the header alone, and poisons itself", () => {
    const decoder = new FrameDecoder()
    const error = failureOf(decoder.push(hex("00 01 00 01")))
    expect(error.reason).toBe("Oversize")
    expect(error.message).toContain("65537")
    expect(decoder.failure).toBe(error)
    expect(decoder.push(helloRedisFrame)).toEqual([])
  })

  it("refuses a length of 0xFFFFFFFF without allocating its body", () => {
    const before = process.memoryUsage().arrayBuffers
    const decoder = new FrameDecoder()
    const error = failureOf(decoder.push(hex("ff ff ff ff 7b")))
    const grown = process.memoryUsage().arrayBuffers - before
    expect(error.reason).toBe("Oversize")
    expect(error.message).toContain("4294967295")
    expect(grown).toBeLessThan(1024 * 1024)
  })

  it("refuses a zero length as ZeroLength", () => {
    const decoder = new FrameDecoder()
    expect(failureOf(decoder.push(hex("00 00 00 00"))).reason).toBe("ZeroLength")
  })

  it("answers nothing for a truncated frame and reports the bytes pending", () => {
    const decoder = new FrameDecoder()
    expect(decoder.push(helloRedisFrame.subarray(0, 2))).toEqual([])
    expect(decoder.pending()).toBe(2)
    expect(decoder.push(helloRedisFrame.subarray(2, 20))).toEqual([])
    expect(decoder.pending()).toBe(20)
    expect(values(decoder.push(helloRedisFrame.subarray(20)))).toHaveLength(1)
    expect(decoder.pending()).toBe(0)
  })

  it("decodes two frames back to back in one chunk", () => {
    const decoder = new FrameDecoder()
    const results = decoder.push(concat(helloRedisFrame, frameOf({ type: "admin", verb: "status" })))
    expect(values(results)).toEqual([
      { type: "hello", service: "redis", protocol: 1 },
      { type: "admin", verb: "status" }
    ])
  })

  it("decodes frames split byte by byte, each on its last byte", () => {
    const decoder = new FrameDecoder()
    const second = frameOf({ type: "admin", verb: "healthz", request_id: "r-2" })
    const stream = concat(helloRedisFrame, second)
    const completedAt: Array<number> = []
    const decoded: Array<unknown> = []
    stream.forEach((byte, index) => {
      const results = decoder.push(Uint8Array.of(byte))
      if (results.length > 0) completedAt.push(index)
      decoded.push(...values(results))
      if (index === 3) expect(decoder.pending()).toBe(4)
    })
    expect(completedAt).toEqual([helloRedisFrame.length - 1, stream.length - 1])
    expect(decoded).toEqual([
      { type: "hello", service: "redis", protocol: 1 },
      { type: "admin", verb: "healthz", request_id: "r-2" }
    ])
    expect(decoder.pending()).toBe(0)
  })

  it("answers the frames before a bad one, then the error last", () => {
    const decoder = new FrameDecoder()
    const results = decoder.push(concat(helloRedisFrame, hex("00 00 00 00"), helloRedisFrame))
    expect(results).toHaveLength(2)
    expect(Either.isRight(results[0] ?? Either.left(null))).toBe(true)
    expect(failureOf(results).reason).toBe("ZeroLength")
  })

  it("refuses invalid UTF-8 (a stray 0xff, an overlong slash) as InvalidUtf8", () => {
    expect(failureOf(new FrameDecoder().push(hex("00 00 00 03 22 ff 22"))).reason).toBe("InvalidUtf8")
    expect(failureOf(new FrameDecoder().push(hex("00 00 00 04 22 c0 af 22"))).reason).toBe("InvalidUtf8")
  })

  it("refuses a body that is not JSON (truncated object, leading BOM) as InvalidJson", () => {
    const truncated = new TextEncoder().encode(`{"type":`)
    expect(failureOf(new FrameDecoder().push(concat(header(truncated.length), truncated))).reason).toBe("InvalidJson")
    expect(failureOf(new FrameDecoder().push(hex("00 00 00 05 ef bb bf 31 32"))).reason).toBe("InvalidJson")
  })
})

describe("decodeRequest", () => {
  const rejection = (value: unknown) => {
    const decoded = decodeRequest(value)
    if (Either.isRight(decoded)) throw new Error(`expected a rejection, got ${JSON.stringify(decoded.right)}`)
    return decoded.left
  }

  it("decodes a hello and an admin request", () => {
    expect(decodeRequest({ type: "hello", service: "redis", version: "7", request_id: "r-1", protocol: 1 })).toEqual(
      Either.right({ type: "hello", service: "redis", version: "7", request_id: "r-1", protocol: 1 })
    )
    expect(decodeRequest({ type: "admin", verb: "shutdown" })).toEqual(Either.right({ type: "admin", verb: "shutdown" }))
  })

  it("answers unsupported for an unknown type, echoing the request_id", () => {
    expect(rejection({ type: "goodbye", request_id: "r-9" })).toEqual({
      code: "unsupported",
      message: `type: unknown request type "goodbye"`,
      request_id: "r-9"
    })
  })

  it("answers unsupported for protocol 2", () => {
    const refused = rejection({ type: "hello", service: "redis", protocol: 2 })
    expect(refused.code).toBe("unsupported")
    expect(refused.message).toBe("protocol: this broker speaks protocol 1, not 2")
  })

  it("answers unsupported for an unknown admin verb", () => {
    expect(rejection({ type: "admin", verb: "reboot" })).toEqual({ code: "unsupported", message: `verb: unknown admin verb "reboot"` })
  })

  it("answers bad_frame naming the field for a bad service name", () => {
    expect(rejection({ type: "hello", service: "Redis!", protocol: 1 })).toEqual({
      code: "bad_frame",
      message: "service: a service name is 1 to 64 of a-z, 0-9 and -"
    })
    expect(rejection({ type: "hello", service: "a".repeat(65), protocol: 1 }).message).toBe(
      "service: a service name is 1 to 64 of a-z, 0-9 and -"
    )
  })

  it("answers bad_frame for a missing protocol, a non-string version, a missing type and a non-object", () => {
    expect(rejection({ type: "hello", service: "redis" })).toEqual({ code: "bad_frame", message: "protocol: is missing" })
    expect(rejection({ type: "hello", service: "redis", version: 7, protocol: 1 })).toEqual({
      code: "bad_frame",
      message: "version: Expected string, actual 7"
    })
    expect(rejection({ service: "redis" })).toEqual({ code: "bad_frame", message: "type: is missing" })
    expect(rejection([1, 2])).toEqual({ code: "bad_frame", message: "a request is a JSON object" })
    expect(rejection("hello").code).toBe("bad_frame")
  })

  it("keeps a rejection message short when the client sends a huge value", () => {
    expect(rejection({ type: "x".repeat(60_000) }).message.length).toBeLessThan(120)
    expect(rejection({ type: "hello", service: "redis", version: { big: "y".repeat(60_000) }, protocol: 1 }).message.length)
      .toBeLessThan(300)
  })
})

describe("reply and request JSON (golden strings)", () => {
  const json = <A, I>(schema: Schema.Schema<A, I>, value: A): string => JSON.stringify(Schema.encodeSync(schema)(value))

  it("hello.ok with a unix and a tcp endpoint", () => {
    expect(json(HelloOk, {
      type: "hello.ok",
      request_id: "r-1",
      service: "redis",
      version: "7.2",
      endpoint: { kind: "unix", path: "/run/corral/redis.sock" },
      instance: "redis-7.2-1",
      launched: true
    })).toBe(
      `{"type":"hello.ok","request_id":"r-1","service":"redis","version":"7.2","endpoint":{"kind":"unix","path":"/run/corral/redis.sock"},"instance":"redis-7.2-1","launched":true}`
    )
    expect(json(HelloOk, {
      type: "hello.ok",
      service: "pg",
      version: "16",
      endpoint: { kind: "tcp", host: "127.0.0.1", port: 5432 },
      instance: "pg-16-1",
      launched: false
    })).toBe(
      `{"type":"hello.ok","service":"pg","version":"16","endpoint":{"kind":"tcp","host":"127.0.0.1","port":5432},"instance":"pg-16-1","launched":false}`
    )
  })

  it("admin.<verb>", () => {
    expect(json(AdminReply, { type: "admin.status", request_id: "r-2", body: { services: 2 } })).toBe(
      `{"type":"admin.status","request_id":"r-2","body":{"services":2}}`
    )
  })

  it("error, with and without retry_after_ms", () => {
    expect(json(ErrorReply, { type: "error", request_id: "r-3", code: "overloaded", message: "busy", retry_after_ms: 50 })).toBe(
      `{"type":"error","request_id":"r-3","code":"overloaded","message":"busy","retry_after_ms":50}`
    )
    expect(json(ErrorReply, { type: "error", code: "bad_frame", message: "frame length is 0" })).toBe(
      `{"type":"error","code":"bad_frame","message":"frame length is 0"}`
    )
  })

  it("the requests", () => {
    expect(json(HelloRequest, { type: "hello", service: "redis", version: "7", request_id: "r-4", protocol: 1 })).toBe(
      `{"type":"hello","service":"redis","version":"7","request_id":"r-4","protocol":1}`
    )
    expect(json(AdminRequest, { type: "admin", verb: "metrics" })).toBe(`{"type":"admin","verb":"metrics"}`)
  })
})
