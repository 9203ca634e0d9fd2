/**
 * Answers the control API builds itself, where the declared schema alone cannot say everything (a
 * `Retry-After` header, a status picked at run time).
 */
import { HttpServerResponse } from "@effect/platform"

const busyMessages = {
  hooks_busy: "every hook invocation permit is in use (host.control.max_hook_invocations); retry later",
  streams_busy: "every event-stream and log-follow slot is in use; close one (or retry later)"
} as const

/** 503 with `Retry-After`: every permit of that kind is taken. */
export const busyResponse = (
  deps: { readonly retryAfterSeconds: number },
  error: keyof typeof busyMessages
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    { error, message: busyMessages[error] },
    { status: 503, headers: { "retry-after": String(deps.retryAfterSeconds) } }
  )

/** A JSON error body `{error, message}` with `status`. */
export const errorResponse = (status: number, error: string, message: string, headers?: Record<string, string>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson({ error, message }, { status, ...(headers === undefined ? {} : { headers }) })
