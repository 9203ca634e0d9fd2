/**
 * The platform's `HttpServerRequest` over a `node:http` request, built for a mounted app: constructing
 * it stores two references, and every field (method, headers, cookies, body readers) is computed on
 * first use. Its `source` and `response` fields are the ones `NodeHttpServerRequest.toIncomingMessage`
 * and `toServerResponse` read, so apps that reach for the Node objects keep working.
 */
import type * as Http from "node:http"
import { Cookies, Headers, HttpIncomingMessage, HttpMethod, HttpServerError, HttpServerRequest, UrlParams } from "@effect/platform"
import type { FileSystem, Multipart, Path, Socket } from "@effect/platform"
import { NodeMultipart, NodeStream } from "@effect/platform-node"
import { Effect, Inspectable, Option } from "effect"
import type { Scope, Stream } from "effect"

/** An `HttpServerRequest` whose fields are read from `source` only when asked for. */
export class NodeServerRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId = HttpServerRequest.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  private headersCache: Headers.Headers | undefined
  private cookiesCache: Readonly<Record<string, string>> | undefined
  private textCache: Effect.Effect<string, HttpServerError.RequestError> | undefined
  private multipartCache: Effect.Effect<Multipart.Persisted, Multipart.MultipartError, Scope.Scope | FileSystem.FileSystem | Path.Path> | undefined

  constructor(
    readonly source: Http.IncomingMessage,
    readonly response: Http.ServerResponse,
    readonly url: string = source.url ?? "/",
    headers?: Headers.Headers,
    private readonly remoteAddressOverride?: string
  ) {
    super()
    this.headersCache = headers
  }

  get originalUrl(): string {
    return this.source.url ?? "/"
  }

  get method(): HttpMethod.HttpMethod {
    // node:http gives methods in upper case already; anything else it parses is not an HttpMethod.
    const method = this.source.method ?? "GET"
    return HttpMethod.isHttpMethod(method) ? method : "GET"
  }

  get headers(): Headers.Headers {
    if (this.headersCache === undefined) this.headersCache = Headers.fromInput(this.source.headers)
    return this.headersCache
  }

  get cookies(): Readonly<Record<string, string>> {
    if (this.cookiesCache === undefined) this.cookiesCache = Cookies.parseHeader(this.headers["cookie"] ?? "")
    return this.cookiesCache
  }

  get remoteAddress(): Option.Option<string> {
    return Option.fromNullable(this.remoteAddressOverride ?? this.source.socket.remoteAddress)
  }

  // A method, not an arrow field: a field would allocate a closure for every request.
  private decodeError(cause: unknown): HttpServerError.RequestError {
    return new HttpServerError.RequestError({ request: this, reason: "Decode", cause })
  }

  get text(): Effect.Effect<string, HttpServerError.RequestError> {
    // Read once (the stream can be consumed only once); the platform's `MaxBodySize` applies as in the stock server.
    if (this.textCache === undefined) {
      this.textCache = Effect.runSync(Effect.cached(
        Effect.flatMap(HttpIncomingMessage.MaxBodySize, (maxBodySize) =>
          NodeStream.toString(() => this.source, { onFailure: (cause) => this.decodeError(cause), maxBytes: Option.getOrUndefined(maxBodySize) }))
      ))
    }
    return this.textCache
  }

  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    return Effect.tryMap(this.text, { try: (text): unknown => (text === "" ? null : JSON.parse(text)), catch: (cause) => this.decodeError(cause) })
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({ try: () => UrlParams.fromInput(new URLSearchParams(text)), catch: (cause) => this.decodeError(cause) }))
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    return Effect.flatMap(HttpIncomingMessage.MaxBodySize, (maxBodySize) =>
      Effect.map(
        NodeStream.toUint8Array(() => this.source, { onFailure: (cause) => this.decodeError(cause), maxBytes: Option.getOrUndefined(maxBodySize) }),
        // A fresh ArrayBuffer holding exactly the body (a Buffer may be a view into a larger pool).
        (bytes) => bytes.slice().buffer
      ))
  }

  get stream(): Stream.Stream<Uint8Array, HttpServerError.RequestError> {
    return NodeStream.fromReadable<HttpServerError.RequestError, Uint8Array>(() => this.source, (cause) => this.decodeError(cause))
  }

  get multipart(): Effect.Effect<Multipart.Persisted, Multipart.MultipartError, Scope.Scope | FileSystem.FileSystem | Path.Path> {
    if (this.multipartCache === undefined) {
      this.multipartCache = Effect.runSync(Effect.cached(NodeMultipart.persisted(this.source, this.source.headers)))
    }
    return this.multipartCache
  }

  get multipartStream(): Stream.Stream<Multipart.Part, Multipart.MultipartError> {
    return NodeMultipart.stream(this.source, this.source.headers)
  }

  get upgrade(): Effect.Effect<Socket.Socket, HttpServerError.RequestError> {
    // The bounded server serves no upgrades (its transport has no 'upgrade' listener), as the platform
    // answers for a request that did not come in as one.
    return Effect.fail(new HttpServerError.RequestError({ request: this, reason: "Decode", description: "not an upgradeable ServerRequest" }))
  }

  modify(options: { readonly url?: string; readonly headers?: Headers.Headers; readonly remoteAddress?: string }): NodeServerRequest {
    return new NodeServerRequest(
      this.source,
      this.response,
      options.url ?? this.url,
      options.headers ?? this.headersCache,
      options.remoteAddress ?? this.remoteAddressOverride
    )
  }

  override toString(): string {
    return `ServerRequest(${this.method} ${this.url})`
  }

  toJSON(): unknown {
    return HttpIncomingMessage.inspect(this, { _id: "@effect/platform/HttpServerRequest", method: this.method, url: this.originalUrl })
  }
}
