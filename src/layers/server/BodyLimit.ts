/**
 * The body limit, enforced as the body streams. node:http pushes each parsed body chunk into the
 * request stream; counting there sees every byte whether or not the handler reads the body, so a
 * chunked body is refused the moment it crosses `maxBodyBytes`. And a response written before its
 * request's body has fully arrived closes the connection: otherwise node:http reads and discards the
 * rest of the body (a 1 GiB chunked body, say) to keep the connection alive.
 */
import type * as Http from "node:http"
import { closeLingering } from "./LingeringClose.js"

/** Whether a request announces a body: chunked, or a non-zero `Content-Length`. */
export const announcesBody = (req: Http.IncomingMessage): boolean => {
  if (req.headers["transfer-encoding"] !== undefined) return true
  const length = req.headers["content-length"]
  return length !== undefined && length !== "0"
}

/** A response to a request whose body may still be arriving must close its connection. */
export const closeIfBodyPending = (req: Http.IncomingMessage, res: Http.ServerResponse): void => {
  if (announcesBody(req) && !req.complete) res.shouldKeepAlive = false
}

const chunkLength = (chunk: unknown): number =>
  typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0

/**
 * Counts `req`'s body as node:http parses it. Below the limit every chunk is kept and the socket keeps
 * being read (up to `maxBytes` buffered, as a handler that reads the body would hold anyway); the chunk
 * that crosses it is dropped, nothing more is read, the stream never ends (a reader never sees a
 * truncated body as complete), and `onTooLarge` runs once. Until the body is complete the response
 * closes its connection. A request without a body is left alone.
 */
export const limitRequestBody = (
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  maxBytes: number,
  onTooLarge: () => void
): void => {
  if (!announcesBody(req)) return
  const keepAlive = res.shouldKeepAlive
  res.shouldKeepAlive = false
  let received = 0
  let refused = false
  const push = req.push.bind(req)
  // Replaces the stream's own `push` on this one request: node:http has no other hook that sees body
  // bytes a handler does not read (its parser consumes the socket natively).
  req.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (refused) return false
    if (chunk === null) {
      if (!res.headersSent) res.shouldKeepAlive = keepAlive
      return push(null)
    }
    received += chunkLength(chunk)
    if (received > maxBytes) {
      refused = true
      onTooLarge()
      return false
    }
    push(chunk, encoding)
    // Keep reading even when nobody reads yet: a body past the limit must be seen to be refused.
    return true
  }
}

/**
 * Answers 413 with `Connection: close` if nothing was sent yet (node:http then closes the socket once
 * the response is written); a response already under way cannot change, so the connection is closed.
 */
export const answerTooLarge = (res: Http.ServerResponse, body: string): void => {
  if (res.headersSent || res.writableEnded) {
    if (res.socket !== null) closeLingering(res.socket)
    return
  }
  res.shouldKeepAlive = false
  res.statusCode = 413
  res.setHeader("content-type", "application/json")
  res.end(body)
}
