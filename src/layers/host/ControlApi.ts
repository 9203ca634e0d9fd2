/**
 * The control API's route keys and its one lean route. Every route is declared in `ControlApiSpec` and
 * served from it (control/ControlApp.ts), except `POST /v1/hooks/{hook}/invoke`, which is hook traffic,
 * not operator traffic: it runs on the bounded server's direct path (no platform request objects, no
 * router; the Host check, the token, the hook permit, the body and its parse are plain code, and the hook
 * run is the one fiber), with the same auth and headers, and is still described in the OpenAPI document.
 */
import { Effect, Either, Schema } from "effect"
import { exceedsJsonDepth, maxJsonDepth } from "../../services/system/JsonDepth.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"
import { BoundedResponse } from "../../services/server/BoundedHttp.js"
import { decodeEnvelopeFast } from "../../services/host/ContractDecoders.js"
import { WorkflowEnvelope } from "../../services/host/MiddlewareContract.js"
import { declaredPaths } from "./control/ControlApp.js"
import { rememberJson } from "./ForwardedJson.js"
import type { ControlDependencies } from "./control/ControlDependencies.js"
import { badHost, isLoopbackHostHeader } from "./control/HostHeader.js"
import { carriesSessionCookie, carriesToken, checkSession, unauthorized } from "./control/RequestAuth.js"
import { answerHeaders } from "./control/SecurityHeaders.js"
import type { DirectHead, DirectRequest, FastPath } from "../server/BoundedServer.js"

/** Where every request outside the declared routes is counted, so raw paths never become keys. */
export const unknownControlRoute = "(unknown)"

const hookInvokePath = /^\/v1\/hooks\/[^/]+\/invoke$/

/** Whether a request is a hook invocation (served on the fast path). */
export const isHookInvocation = (method: string, path: string): boolean => method === "POST" && hookInvokePath.test(path)

/**
 * The route template of a control API request (`/v1/components/{id}`), which route alarms and the
 * duration histogram key: ids and garbage paths never become keys, and unknown paths share one.
 */
export const controlRouteOf = (method: string, path: string): string => {
  if (isHookInvocation(method, path)) return "/v1/hooks/{hook}/invoke"
  for (const declared of declaredPaths) if (declared.pattern.test(path)) return declared.template
  return unknownControlRoute
}

// Every answer of the route: JSON, and what a browser must be told (SecurityHeaders.ts).
const jsonAnswerHeaders: Readonly<Record<string, string>> = { ...answerHeaders, "content-type": "application/json" }

const answer = (value: unknown, status: number, headers: Readonly<Record<string, string>> = jsonAnswerHeaders): BoundedResponse => ({
  status,
  headers,
  body: JSON.stringify(value)
})

const json = (status: number, error: string, message: string, headers?: Readonly<Record<string, string>>) =>
  answer({ error, message }, status, headers === undefined ? jsonAnswerHeaders : { ...jsonAnswerHeaders, ...headers })

// Built once for the shape: an invocation only runs the prebuilt decoder.
const decodeEnvelope = Schema.decodeUnknownEither(WorkflowEnvelope, { errors: "all" })

const textDecoder = new TextDecoder()

const envelopeKeys: ReadonlySet<string> = new Set(Object.keys(WorkflowEnvelope.from.fields))

/** Whether every key of `body` is one the envelope schema keeps (decoding drops any other). */
const onlyEnvelopeKeys = (body: unknown): boolean =>
  typeof body === "object" && body !== null && !Array.isArray(body) && Object.keys(body).every((key) => envelopeKeys.has(key))

/** Whether `text` is `bytes` exactly: no byte-order mark dropped, no invalid UTF-8 replaced. */
const decodedAsIs = (bytes: Uint8Array, text: string): boolean => bytes[0] !== 0xef && !text.includes("\uFFFD")

const parseJson = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text) as unknown)
  } catch (error) {
    // The same words as the server's own `request.json`.
    return Either.left(`request body is not JSON: ${String(error)}`)
  }
}

/** The hook a `/v1/hooks/{hook}/invoke` path names, or `undefined` when its percent-encoding is invalid. */
const hookOf = (path: string): string | undefined => {
  const segment = path.split("/")[3] ?? ""
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

const unauthorizedResponse = (error: { readonly error: string; readonly message: string }) =>
  json(401, error.error, error.message, { "www-authenticate": "Bearer" })

/**
 * `POST /v1/hooks/{hook}/invoke` on the bounded server's direct path. Before the body: the Host header, the
 * token (a session cookie, the rare case, is checked by the session store in a fiber), the hook name's
 * encoding and a hook permit (held until the request ends, however it ends). With the body: its parse and
 * the envelope in plain code; the hook's existence and its run in one fiber.
 */
export const hookInvocationRoute = (deps: ControlDependencies): FastPath<never, never> => {
  const busy = json(503, "hooks_busy", "every hook invocation permit is in use (host.control.max_hook_invocations); retry later", {
    "retry-after": String(deps.retryAfterSeconds)
  })
  const authorized = (head: DirectHead): BoundedResponse | undefined => {
    if (hookOf(head.path) === undefined) {
      return json(400, "bad_path", `${head.path} is not valid percent-encoding: encode each path segment (encodeURIComponent)`)
    }
    if (!deps.hookPermits.tryTake()) return busy
    head.onEnd(() => deps.hookPermits.release())
    return undefined
  }
  return {
    matches: isHookInvocation,
    headers: answerHeaders,
    admit: (head) => {
      if (!isLoopbackHostHeader(head.headers["host"])) return json(403, badHost.error, badHost.message)
      if (carriesToken(deps.credentials, head.headers)) return authorized(head)
      if (!carriesSessionCookie(head.headers)) return unauthorizedResponse(unauthorized)
      // A session: the store decides (the status page's calls).
      return Effect.match(checkSession(deps.credentials, head.method, head.url, head.headers), {
        onFailure: unauthorizedResponse,
        onSuccess: () => authorized(head)
      })
    },
    handle: (request) => {
      // Admitted, so its name decodes (decoded again rather than kept in a per-request map).
      const hook = hookOf(request.path) ?? ""
      const envelope = envelopeOfBody(hook, request)
      return Effect.flatMap(deps.hooks.names, (names) => {
        if (!names.includes(hook)) return Effect.succeed(json(404, "not_found", `no hook named ${hook} (configured: ${names.join(", ") || "none"})`))
        if (Either.isLeft(envelope)) return Effect.succeed(envelope.left)
        return Effect.match(deps.hooks.invoke(hook, envelope.right), {
          onFailure: (error) => json(404, "not_found", error.message),
          onSuccess: (result) => answer(result, 200)
        })
      })
    }
  }
}

/** The envelope of a request body already parsed, or the 400 that says what is wrong with it. */
const envelopeOf = (hook: string, bytes: Uint8Array, text: string, body: unknown): Either.Either<WorkflowEnvelope, BoundedResponse> => {
  const withHook = typeof body === "object" && body !== null && !("hook" in body) ? { ...body, hook } : body
  // The hand-written decoder takes the common envelopes; the Schema decides the rest and words the error.
  const fast = decodeEnvelopeFast(withHook)
  const decoded = fast === undefined ? decodeEnvelope(withHook) : Either.right(fast)
  if (Either.isLeft(decoded)) return Either.left(json(400, "bad_envelope", `not a WorkflowEnvelope: ${parseIssueLines(decoded.left).join("; ")}`))
  const envelope = decoded.right
  if (envelope.hook !== hook) return Either.left(json(400, "bad_envelope", `envelope.hook is ${envelope.hook} but the route's hook is ${hook}`))
  // The body as sent is the envelope's encoding when decoding changed nothing: no hook added, no key dropped.
  if (withHook === body && onlyEnvelopeKeys(body) && decodedAsIs(bytes, text)) rememberJson(envelope, bytes)
  return Either.right(envelope)
}

/** The envelope a request's body holds for `hook`, or the 400 that says what is wrong with the body. */
const envelopeOfBody = (hook: string, request: DirectRequest): Either.Either<WorkflowEnvelope, BoundedResponse> => {
  const bytes = request.body
  const text = textDecoder.decode(bytes)
  // Measured before it is parsed: a deeply nested envelope would overflow the stack further on.
  if (exceedsJsonDepth(text)) {
    return Either.left(json(400, "too_deep", `the envelope nests deeper than ${maxJsonDepth} levels of arrays and objects; send at most ${maxJsonDepth}`))
  }
  // Parsed once, from the text already read.
  const body = parseJson(text)
  if (Either.isLeft(body)) return Either.left(json(400, "bad_request", body.left))
  return envelopeOf(hook, bytes, text, body.right)
}
