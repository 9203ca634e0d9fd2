/**
 * The bounded server's own single-method HTTP interface: a request in, an `Effect` of a response out.
 */
import type { Effect } from "effect"
import { Schema } from "effect"

/** The request body was larger than `maxBodyBytes`, or the client went away while sending it. */
export class RequestBodyError extends Schema.TaggedError<RequestBodyError>()("RequestBodyError", {
  reason: Schema.Literal("TooLarge", "Aborted", "InvalidJson"),
  message: Schema.String
}) {}

/** Request headers by lower-case name: one value, several (`set-cookie`), or absent. */
export type RequestHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/** One HTTP request as a handler sees it. */
export interface BoundedRequest {
  /** Unique per server run; echoed in `x-request-id` and in error bodies. */
  readonly id: string
  readonly method: string
  /** The raw request target, query included. */
  readonly url: string
  /** The path without the query string. */
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: RequestHeaders
  readonly remoteAddress: string | undefined
  /**
   * The whole body, at most `maxBodyBytes`. A body crossing the limit is answered 413 by the server
   * as it streams, read or not, and the run ends as if its client had gone.
   */
  readonly body: Effect.Effect<Uint8Array, RequestBodyError>
  readonly text: Effect.Effect<string, RequestBodyError>
  readonly json: Effect.Effect<unknown, RequestBodyError>
}

/** What a handler answers. */
export interface BoundedResponse {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array
}

/** A handler of the bounded server's own interface (the seed's `ConnectionHandler`, over HTTP). */
export type RequestHandler<E = never, R = never> = (request: BoundedRequest) => Effect.Effect<BoundedResponse, E, R>

const jsonHeaders = { "content-type": "application/json" } as const
const textHeaders = { "content-type": "text/plain; charset=utf-8" } as const

/** Constructors for common responses. */
export const BoundedResponse = {
  json: (value: unknown, status = 200, headers?: Readonly<Record<string, string>>): BoundedResponse => ({
    status,
    headers: headers === undefined ? jsonHeaders : { ...jsonHeaders, ...headers },
    body: JSON.stringify(value)
  }),
  text: (body: string, status = 200, headers?: Readonly<Record<string, string>>): BoundedResponse => ({
    status,
    headers: headers === undefined ? textHeaders : { ...textHeaders, ...headers },
    body
  }),
  empty: (status = 204): BoundedResponse => ({ status })
} as const
