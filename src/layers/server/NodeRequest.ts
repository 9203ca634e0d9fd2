/**
 * `BoundedRequest` over a `node:http` request: fields are computed on first use, so a handler that
 * never reads the query or the body pays nothing for them.
 */
import type { IncomingMessage } from "node:http"
import { Effect } from "effect"
import { RequestBodyError, type BoundedRequest, type RequestHeaders } from "../../services/server/BoundedHttp.js"

/** Reads a request body, failing with `TooLarge` past `maxBytes` (counted while streaming). */
export const readBody = (source: IncomingMessage, maxBytes: number): Effect.Effect<Uint8Array, RequestBodyError> =>
  Effect.async<Uint8Array, RequestBodyError>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      source.off("aborted", onAborted)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        cleanup()
        source.pause()
        resume(Effect.fail(new RequestBodyError({ reason: "TooLarge", message: `request body exceeds ${maxBytes} bytes` })))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)))
    }
    const onError = (error: Error) => {
      cleanup()
      resume(Effect.fail(new RequestBodyError({ reason: "Aborted", message: error.message })))
    }
    const onAborted = () => onError(new Error("client aborted the request body"))
    if (source.readableEnded) {
      resume(Effect.succeed(new Uint8Array(0)))
      return
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    source.on("aborted", onAborted)
    return Effect.sync(cleanup)
  })

const decoder = new TextDecoder()

/** The path of a request target, without its query string. */
export const pathOf = (url: string): string => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

/** A `node:http` request seen through the bounded interface. */
export class NodeBoundedRequest implements BoundedRequest {
  private queryCache: URLSearchParams | undefined
  private pathCache: string | undefined
  private bodyCache: Effect.Effect<Uint8Array, RequestBodyError> | undefined

  constructor(
    readonly id: string,
    readonly source: IncomingMessage,
    private readonly maxBodyBytes: number
  ) {}

  get method(): string {
    return this.source.method ?? "GET"
  }
  get url(): string {
    return this.source.url ?? "/"
  }
  get path(): string {
    if (this.pathCache === undefined) this.pathCache = pathOf(this.url)
    return this.pathCache
  }
  get query(): URLSearchParams {
    if (this.queryCache === undefined) {
      const url = this.url
      const q = url.indexOf("?")
      this.queryCache = new URLSearchParams(q === -1 ? "" : url.slice(q + 1))
    }
    return this.queryCache
  }
  get headers(): RequestHeaders {
    return this.source.headers
  }
  get remoteAddress(): string | undefined {
    return this.source.socket.remoteAddress
  }
  get body(): Effect.Effect<Uint8Array, RequestBodyError> {
    // Read once; a second `body` gets the same bytes.
    if (this.bodyCache === undefined) this.bodyCache = Effect.cached(readBody(this.source, this.maxBodyBytes)).pipe(Effect.runSync)
    return this.bodyCache
  }
  get text(): Effect.Effect<string, RequestBodyError> {
    return Effect.map(this.body, (bytes) => decoder.decode(bytes))
  }
  get json(): Effect.Effect<unknown, RequestBodyError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: (): unknown => JSON.parse(text),
        catch: (error) =>
          new RequestBodyError({ reason: "InvalidJson", message: `request body is not JSON: ${String(error)}` })
      })
    )
  }
}
