/**
 * The server span of one mounted-app request, with the attributes the platform's tracer middleware sets
 * (which `@effect/platform` does not export): the caller's trace context from the headers as parent,
 * the span named by `HttpMiddleware.SpanNameGenerator`, redacted headers, and the answer's status.
 */
import { Headers, HttpMiddleware, HttpServerError, HttpTraceContext } from "@effect/platform"
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect, Option } from "effect"

/** Runs `app` for `request` inside a server span. */
export const withRequestSpan = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const redacted = fiber.getFiberRef(Headers.currentRedactedNames)
    const name = Context.get(fiber.currentContext, HttpMiddleware.SpanNameGenerator)(request)
    return Effect.useSpan(
      name,
      { parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(request.headers)), kind: "server", captureStackTrace: false },
      (span) => {
        span.attribute("http.request.method", request.method)
        const query = request.url.indexOf("?")
        span.attribute("url.path", query === -1 ? request.url : request.url.slice(0, query))
        if (query !== -1) span.attribute("url.query", request.url.slice(query + 1))
        const userAgent = request.headers["user-agent"]
        if (userAgent !== undefined) span.attribute("user_agent.original", userAgent)
        const headers = Headers.redact(request.headers, redacted)
        for (const header in headers) span.attribute(`http.request.header.${header}`, String(headers[header]))
        if (Option.isSome(request.remoteAddress)) span.attribute("client.address", request.remoteAddress.value)
        return Effect.onExit(Effect.withParentSpan(app, span), (exit) =>
          Effect.sync(() => span.attribute("http.response.status_code", HttpServerError.exitResponse(exit).status)))
      }
    )
  })
