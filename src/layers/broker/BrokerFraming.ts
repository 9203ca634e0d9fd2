/**
 * BrokerFraming: the broker's length-prefixed frames (4-byte big-endian length, then 1..65536 bytes
 * of UTF-8 JSON) and request decoding. Pure: no I/O. Failures are `Either` values, never throws.
 */
import { Either, ParseResult, Schema } from "effect"
import {
  AdminRequest,
  AdminVerb,
  type BrokerRequest,
  brokerProtocolVersion,
  frameHeaderBytes,
  HelloRequest,
  maxFrameBytes
} from "../../services/broker/BrokerProtocol.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"

/** A frame that cannot be encoded or decoded; a decoder that produced one is poisoned. */
export class FrameError extends Schema.TaggedError<FrameError>()("FrameError", {
  reason: Schema.Literal("ZeroLength", "Oversize", "InvalidUtf8", "InvalidJson"),
  message: Schema.String
}) {}

/** One decoded frame: its JSON value, or why the frame is unusable. */
export type FrameResult = Either.Either<unknown, FrameError>

/** Why a well-framed JSON value is not a request: `unsupported` (unknown type, verb or protocol) or `bad_frame`. */
export interface RequestRejection {
  readonly code: "bad_frame" | "unsupported"
  readonly message: string
  /** The request's `request_id` when it had a string one, so the error reply can echo it. */
  readonly request_id?: string
}

// `fatal` rejects malformed UTF-8; `ignoreBOM` keeps a BOM in the text so JSON.parse refuses it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const lengthError = (length: number): FrameError | undefined =>
  length === 0
    ? new FrameError({ reason: "ZeroLength", message: `frame length is 0; a frame carries 1 to ${maxFrameBytes} bytes` })
    : length > maxFrameBytes
    ? new FrameError({ reason: "Oversize", message: `frame length ${length} exceeds the maximum of ${maxFrameBytes} bytes` })
    : undefined

/** `value` as one frame: its JSON in UTF-8 behind a 4-byte big-endian length; Left when it has no JSON form or is over 65,536 bytes. */
export const encodeFrame = (value: unknown): Either.Either<Uint8Array, FrameError> => {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    return Either.left(new FrameError({ reason: "InvalidJson", message: `value has no JSON form: ${detail}` }))
  }
  if (text === undefined) {
    return Either.left(new FrameError({ reason: "InvalidJson", message: `value has no JSON form (${typeof value})` }))
  }
  return encodeTextFrame(text)
}

/** JSON text already written (the broker's replies) as one frame; Left when it is over 65,536 bytes of UTF-8. */
export const encodeTextFrame = (text: string): Either.Either<Uint8Array, FrameError> => {
  const length = Buffer.byteLength(text, "utf8")
  const refused = lengthError(length)
  if (refused !== undefined) return Either.left(refused)
  // One allocation: the header and the body are written into the frame itself.
  const frame = Buffer.allocUnsafe(frameHeaderBytes + length)
  frame.writeUInt32BE(length, 0)
  frame.write(text, frameHeaderBytes, "utf8")
  return Either.right(frame)
}

const decodeBody = (body: Uint8Array): FrameResult => {
  let text: string
  try {
    text = utf8Decoder.decode(body)
  } catch {
    return Either.left(new FrameError({ reason: "InvalidUtf8", message: `frame body of ${body.length} bytes is not valid UTF-8` }))
  }
  try {
    return Either.right(JSON.parse(text) as unknown)
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    return Either.left(new FrameError({ reason: "InvalidJson", message: `frame body is not JSON: ${detail}` }))
  }
}

/**
 * Incremental frame decoder for one connection: feed it chunks as they arrive, in order. The length
 * is checked from the header before the body buffer (at most 65,536 bytes) is allocated.
 */
export class FrameDecoder {
  readonly #header = new Uint8Array(frameHeaderBytes)
  #headerFilled = 0
  #body: Uint8Array | undefined = undefined
  #bodyFilled = 0
  #failure: FrameError | undefined = undefined

  /** The frames completed by `chunk`, in order; an error is always last, and after it every push returns nothing. */
  push(chunk: Uint8Array): ReadonlyArray<FrameResult> {
    if (this.#failure !== undefined) return []
    const results: Array<FrameResult> = []
    let offset = 0
    while (offset < chunk.length) {
      let body = this.#body
      if (body === undefined) {
        const take = Math.min(frameHeaderBytes - this.#headerFilled, chunk.length - offset)
        this.#header.set(chunk.subarray(offset, offset + take), this.#headerFilled)
        this.#headerFilled += take
        offset += take
        if (this.#headerFilled < frameHeaderBytes) break
        const length = new DataView(this.#header.buffer).getUint32(0, false)
        const refused = lengthError(length)
        if (refused !== undefined) return this.#poison(results, refused)
        body = new Uint8Array(length)
        this.#body = body
        this.#bodyFilled = 0
      }
      const take = Math.min(body.length - this.#bodyFilled, chunk.length - offset)
      body.set(chunk.subarray(offset, offset + take), this.#bodyFilled)
      this.#bodyFilled += take
      offset += take
      if (this.#bodyFilled < body.length) break
      this.#body = undefined
      this.#bodyFilled = 0
      this.#headerFilled = 0
      const result = decodeBody(body)
      if (Either.isLeft(result)) return this.#poison(results, result.left)
      results.push(result)
    }
    return results
  }

  /** Bytes received of a frame not yet complete (header included); 0 between frames. */
  pending(): number {
    return this.#headerFilled + this.#bodyFilled
  }

  /** The error that poisoned this decoder, if any. */
  get failure(): FrameError | undefined {
    return this.#failure
  }

  #poison(results: Array<FrameResult>, error: FrameError): ReadonlyArray<FrameResult> {
    this.#failure = error
    this.#body = undefined
    results.push(Either.left(error))
    return results
  }
}

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isAdminVerb = Schema.is(AdminVerb)
// Built once: a decoder per call would rebuild its parser from the AST on every frame.
const decodeHello = Schema.decodeUnknownEither(HelloRequest)
const decodeAdmin = Schema.decodeUnknownEither(AdminRequest)

/** Characters of a client's string quoted back in a rejection (so the error reply stays small). */
const quotedLength = 64
/** Characters of a rejection message at most (a schema message can quote the offending value). */
const messageLength = 240

const clip = (text: string, length: number): string => text.length > length ? `${text.slice(0, length)}…` : text

const quote = (text: string): string => JSON.stringify(clip(text, quotedLength))

const firstIssue = (error: ParseResult.ParseError): string =>
  clip(parseIssueLines(error)[0] ?? "does not match the protocol", messageLength)

/**
 * A frame's JSON value as a request. An unknown `type`, an unknown admin `verb` or a `protocol`
 * number other than 1 is `unsupported`; anything else malformed is `bad_frame`, naming the field.
 */
export const decodeRequest = (value: unknown): Either.Either<BrokerRequest, RequestRejection> => {
  if (!isRecord(value)) return Either.left({ code: "bad_frame", message: "a request is a JSON object" })
  const requestId = value["request_id"]
  const reject = (code: RequestRejection["code"], message: string): Either.Either<BrokerRequest, RequestRejection> =>
    Either.left(typeof requestId === "string" ? { code, message, request_id: requestId } : { code, message })
  const type = value["type"]
  if (type === undefined) return reject("bad_frame", "type: is missing")
  if (typeof type !== "string") return reject("bad_frame", "type: a request type is a string")
  if (type === "hello") {
    const protocol = value["protocol"]
    if (typeof protocol === "number" && protocol !== brokerProtocolVersion) {
      return reject("unsupported", `protocol: this broker speaks protocol ${brokerProtocolVersion}, not ${protocol}`)
    }
    return decodeHello(value).pipe(
      Either.orElse((error) => reject("bad_frame", firstIssue(error)))
    )
  }
  if (type === "admin") {
    const verb = value["verb"]
    if (typeof verb === "string" && !isAdminVerb(verb)) {
      return reject("unsupported", `verb: unknown admin verb ${quote(verb)}`)
    }
    return decodeAdmin(value).pipe(
      Either.orElse((error) => reject("bad_frame", firstIssue(error)))
    )
  }
  return reject("unsupported", `type: unknown request type ${quote(type)}`)
}
