/**
 * The broker's replies as frames, written by hand for the three fixed shapes (`hello.ok`,
 * `admin.<verb>`, `error`) instead of through `Schema.encodeSync(BrokerReply)` per reply. The Schema
 * stays the contract: a test checks, for every reply kind, that this output is byte for byte what
 * `JSON.stringify(Schema.encodeSync(BrokerReply)(reply))` writes and that it decodes with `BrokerReply`.
 */
import { Either } from "effect"
import type { BrokerReply, Endpoint } from "../../services/broker/BrokerProtocol.js"
import { encodeTextFrame } from "./BrokerFraming.js"

const text = JSON.stringify

/** `,"request_id":…` when the reply echoes one; the key order is the Schema's. */
const requestIdField = (requestId: string | undefined): string => requestId === undefined ? "" : `,"request_id":${text(requestId)}`

const endpointJson = (endpoint: Endpoint): string =>
  endpoint.kind === "unix"
    ? `{"kind":"unix","path":${text(endpoint.path)}}`
    : `{"kind":"tcp","host":${text(endpoint.host)},"port":${text(endpoint.port)}}`

/**
 * The JSON text of `reply`, keys in the Schema's order. An admin body without a JSON form (it never
 * has one today: bodies are plain data) throws, as `JSON.stringify` does.
 */
export const replyJson = (reply: BrokerReply): string => {
  switch (reply.type) {
    case "hello.ok":
      return `{"type":"hello.ok"${requestIdField(reply.request_id)},"service":${text(reply.service)},` +
        `"version":${text(reply.version)},"endpoint":${endpointJson(reply.endpoint)},` +
        `"instance":${text(reply.instance)},"launched":${reply.launched ? "true" : "false"}}`
    case "error":
      return `{"type":"error"${requestIdField(reply.request_id)},"code":${text(reply.code)},"message":${text(reply.message)}` +
        `${reply.retry_after_ms === undefined ? "" : `,"retry_after_ms":${text(reply.retry_after_ms)}`}}`
    default:
      return `{"type":${text(reply.type)}${requestIdField(reply.request_id)},"body":${text(reply.body) ?? "null"}}`
  }
}

/** Said instead when a reply cannot be framed (only an echoed, enormous request_id makes one too large). */
const tooLarge = Either.getOrElse(
  encodeTextFrame(`{"type":"error","code":"bad_frame","message":"reply too large (request_id too long?)"}`),
  () => new Uint8Array(0)
)

/** `reply` as one frame; a reply over the frame limit, or without a JSON form, is answered `bad_frame` instead. */
export const encodeReply = (reply: BrokerReply): Uint8Array => {
  let json: string
  try {
    json = replyJson(reply)
  } catch {
    return tooLarge
  }
  return Either.getOrElse(encodeTextFrame(json), () => tooLarge)
}
