/**
 * Writes a platform `HttpServerResponse` to a `node:http` response, as `@effect/platform-node`'s server
 * does, except that a body already in memory (empty, a string, bytes) is written synchronously: the
 * request's fiber does not wait for a write callback, so it ends without another scheduler turn.
 * Streamed bodies (a `Stream`, a Node readable, `FormData`) keep the platform's semantics: backpressure
 * through `drain`, and a failure mid-body ends the response.
 */
import type * as Http from "node:http"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Cookies, HttpServerError } from "@effect/platform"
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Chunk, Effect, Stream } from "effect"

type OutgoingHeaders = Record<string, string | Array<string>>

const headersOf = (response: HttpServerResponse.HttpServerResponse): OutgoingHeaders => {
  if (Cookies.isEmpty(response.cookies)) return response.headers
  const headers: OutgoingHeaders = { ...response.headers }
  const setCookie = Cookies.toSetCookieHeaders(response.cookies)
  const existing = response.headers["set-cookie"]
  if (existing !== undefined) setCookie.push(existing)
  headers["set-cookie"] = setCookie
  return headers
}

const isReadable = (body: unknown): body is NodeJS.ReadableStream =>
  typeof body === "object" && body !== null && "pipe" in body && typeof body.pipe === "function"

/** Ends a response whose body failed: a 500 if nothing was sent, else just the end. */
const failedBody = (res: Http.ServerResponse, request: HttpServerRequest.HttpServerRequest, response: HttpServerResponse.HttpServerResponse) =>
  (cause: Cause.Cause<unknown>): Effect.Effect<void, HttpServerError.ResponseError> => {
    if (!res.headersSent) res.writeHead(500)
    if (!res.writableEnded) res.end()
    return Cause.isInterruptedOnly(cause)
      ? Effect.failCause(Cause.stripFailures(cause))
      : Effect.fail(new HttpServerError.ResponseError({ request, response, reason: "Decode", cause: Cause.squash(cause) }))
  }

/**
 * Writes `response` to `res`. Returns `undefined` when the response is already complete (written
 * synchronously, or the response was ended before), else the effect that streams its body.
 */
export const writeResponse = (
  res: Http.ServerResponse,
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<void, HttpServerError.ResponseError> | undefined => {
  if (res.writableEnded || res.destroyed) return undefined
  const headers = headersOf(response)
  if (request.method === "HEAD") {
    res.writeHead(response.status, headers)
    res.end()
    return undefined
  }
  const body = response.body
  switch (body._tag) {
    case "Empty":
      res.writeHead(response.status, headers)
      res.end()
      return undefined
    case "Uint8Array":
      res.writeHead(response.status, headers)
      res.end(body.body)
      return undefined
    case "Raw": {
      res.writeHead(response.status, headers)
      const raw = body.body
      if (isReadable(raw)) {
        return Effect.tryPromise({
          try: (signal) => pipeline(raw, res, { signal, end: true }),
          catch: (cause) => new HttpServerError.ResponseError({ request, response, reason: "Decode", cause })
        }).pipe(Effect.interruptible, Effect.catchAllCause(failedBody(res, request, response)))
      }
      if (typeof raw === "string" || raw instanceof Uint8Array) res.end(raw)
      else res.end(raw === undefined || raw === null ? undefined : String(raw))
      return undefined
    }
    case "FormData": {
      const web = new Response(body.formData)
      res.writeHead(response.status, { ...headers, ...Object.fromEntries(web.headers) })
      const source = web.body
      if (source === null) {
        res.end()
        return undefined
      }
      return Effect.tryPromise({
        try: (signal) => pipeline(Readable.fromWeb(source, { signal }), res, { signal, end: true }),
        catch: (cause) => new HttpServerError.ResponseError({ request, response, reason: "Decode", cause })
      }).pipe(Effect.interruptible, Effect.catchAllCause(failedBody(res, request, response)))
    }
    case "Stream": {
      res.writeHead(response.status, headers)
      const drained = Effect.unsafeMakeLatch()
      res.on("drain", () => drained.unsafeOpen())
      return body.stream.pipe(
        Stream.orDie,
        Stream.runForEachChunk((chunk) => {
          let full = false
          for (const part of Chunk.toReadonlyArray(chunk)) full = !res.write(part)
          if (!full) return Effect.void
          drained.unsafeClose()
          // 'drain' may have fired between the write and the close: only wait while the buffer is full.
          return res.writableNeedDrain ? drained.await : Effect.void
        }),
        Effect.interruptible,
        Effect.matchCauseEffect({
          onSuccess: () => Effect.sync(() => void res.end()),
          onFailure: failedBody(res, request, response)
        })
      )
    }
  }
}
