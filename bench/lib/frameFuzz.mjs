// Fuzzed broker frames for the fault campaign: each case is a list of byte chunks written to a fresh
// connection of the broker socket. Cases mix structured mutations (lengths of 0, past the 65,536 cap
// or 2^32-1; bodies that are not UTF-8, not JSON, not an object; hellos with wrong field types, huge
// strings, unknown types and verbs; truncated frames; many pipelined frames) with random bytes.
// Never the valid verb `shutdown`: that is the owner's documented way to stop the host, not a fault.
import { encodeFrame } from "./brokerClient.mjs"

const header = (length) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(length >>> 0, 0)
  return b
}
const withBody = (body) => Buffer.concat([header(body.length), body])

/** One fuzz case from `rng` (see seeded.mjs): `{ kind, chunks, pauseMs, expect? }` (replies to wait for, default 1). */
export const fuzzCase = (rng) => {
  const kinds = [
    () => ({ kind: "zero_length", chunks: [header(0)] }),
    () => ({ kind: "over_cap_length", chunks: [header(65_537), rng.bytes(64)] }),
    () => ({ kind: "max_length", chunks: [header(0xffffffff)] }),
    () => ({ kind: "invalid_utf8", chunks: [withBody(Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x7b]))] }),
    () => ({ kind: "not_json", chunks: [withBody(Buffer.from("hello, broker"))] }),
    () => ({ kind: "json_not_object", chunks: [encodeFrame(rng.pick(["[]", "null", "42", '"hello"', "true"]))] }),
    () => ({ kind: "hello_wrong_types", chunks: [encodeFrame({ type: "hello", service: rng.pick([42, null, [], {}]), protocol: rng.pick(["1", -1, 1e308, null]) })] }),
    () => ({ kind: "hello_huge_service", chunks: [encodeFrame({ type: "hello", service: "s".repeat(60_000), protocol: 1 })] }),
    () => ({ kind: "unknown_type", chunks: [encodeFrame({ type: rng.pick(["goodbye", "", "HELLO", "admin.status"]), protocol: 1 })] }),
    () => ({ kind: "admin_unknown_verb", chunks: [encodeFrame({ type: "admin", verb: rng.pick(["reboot", "rm -rf", "", "status\u0000", "STATUS"]) })] }),
    () => ({ kind: "truncated", chunks: [header(200), rng.bytes(1 + rng.int(150))] }),
    () => ({ kind: "partial_header", chunks: [rng.bytes(1 + rng.int(3))] }),
    () => ({ kind: "deep_json", chunks: [withBody(Buffer.from(`${"[".repeat(5_000)}${"]".repeat(5_000)}`))] }),
    () => ({
      kind: "pipelined_mixed",
      expect: 2,
      chunks: [Buffer.concat([encodeFrame({ type: "hello", service: "echo", protocol: 1 }), withBody(rng.bytes(16)), encodeFrame({ type: "hello", service: "echo", protocol: 1 })])]
    }),
    () => ({ kind: "byte_by_byte_hello", chunks: [...encodeFrame({ type: "hello", service: "echo", protocol: 1 })].map((b) => Buffer.from([b])), pauseMs: 2 }),
    () => ({ kind: "random_bytes", chunks: [rng.bytes(1 + rng.int(512))] }),
    () => ({ kind: "random_body", chunks: [withBody(rng.bytes(1 + rng.int(512)))] })
  ]
  return { pauseMs: 0, ...rng.pick(kinds)() }
}
