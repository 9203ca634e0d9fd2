/**
 * The control API's route keys and its one lean route. Every route is declared in `ControlApiSpec` and
 * served from it (control/ControlApp.ts), except `POST /v1/hooks/{hook}/invoke`, which is hook traffic,
 * not operator traffic: it runs on the bounded server's handler fast path (no platform request objects,
 * no router), with the same auth, and is still described in the OpenAPI document.
 */
import { Effect, Either, Option, Schema } from "effect"
import { exceedsJsonDepth, maxJsonDepth } from "../../services/system/JsonDepth.js"
import { parseIssueLines } from "../../services/system/ParseIssues.js"
import type { BoundedRequest, RequestHandler } from "../../services/server/BoundedHttp.js"
import { BoundedResponse } from "../../services/server/BoundedHttp.js"
import { WorkflowEnvelope } from "../../services/host/MiddlewareContract.js"
import { declaredPaths } from "./control/ControlApp.js"
import { rememberJson } from "./ForwardedJson.js"
import type { ControlDependencies } from "./control/ControlDependencies.js"
import { badHost, isLoopbackHostHeader } from "./control/HostHeader.js"
import { checkRequest } from "./control/RequestAuth.js"

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

const json = (status: number, error: string, message: string, headers?: Readonly<Record<string, string>>) =>
  BoundedResponse.json({ error, message }, status, headers)

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

/** `POST /v1/hooks/{hook}/invoke` on the bounded server's own interface. */
export const hookInvocationHandler = (deps: ControlDependencies): RequestHandler => (request) =>
  Effect.gen(function*() {
    if (!isLoopbackHostHeader(request.headers["host"])) return json(403, badHost.error, badHost.message)
    const verdict = yield* Effect.either(checkRequest(deps.credentials, request.method, request.url, request.headers))
    if (Either.isLeft(verdict)) return json(401, verdict.left.error, verdict.left.message, { "www-authenticate": "Bearer" })
    const segment = request.path.split("/")[3] ?? ""
    let hook: string
    try {
      hook = decodeURIComponent(segment)
    } catch {
      return json(400, "bad_path", `${request.path} is not valid percent-encoding: encode each path segment (encodeURIComponent)`)
    }
    const permitted = yield* deps.hookPermits.withPermitsIfAvailable(1)(invoke(deps, hook, request))
    return Option.getOrElse(permitted, () =>
      json(503, "hooks_busy", "every hook invocation permit is in use (host.control.max_hook_invocations); retry later", {
        "retry-after": String(deps.retryAfterSeconds)
      }))
  })

const invoke = (deps: ControlDependencies, hook: string, request: BoundedRequest) =>
  Effect.gen(function*() {
    const names = yield* deps.hooks.names
    if (!names.includes(hook)) return json(404, "not_found", `no hook named ${hook} (configured: ${names.join(", ") || "none"})`)
    // Measured before it is parsed: a deeply nested envelope would overflow the stack further on.
    const bytes = yield* Effect.either(request.body)
    if (Either.isLeft(bytes)) return json(400, "bad_request", bytes.left.message)
    const text = textDecoder.decode(bytes.right)
    if (exceedsJsonDepth(text)) {
      return json(400, "too_deep", `the envelope nests deeper than ${maxJsonDepth} levels of arrays and objects; send at most ${maxJsonDepth}`)
    }
    // Parsed once, from the text already read (request.json would read and parse it again).
    const body = parseJson(text)
    if (Either.isLeft(body)) return json(400, "bad_request", body.left)
    const withHook = typeof body.right === "object" && body.right !== null && !("hook" in body.right)
      ? { ...body.right, hook }
      : body.right
    const envelope = decodeEnvelope(withHook)
    if (Either.isLeft(envelope)) return json(400, "bad_envelope", `not a WorkflowEnvelope: ${parseIssueLines(envelope.left).join("; ")}`)
    if (envelope.right.hook !== hook) return json(400, "bad_envelope", `envelope.hook is ${envelope.right.hook} but the route's hook is ${hook}`)
    // The body as sent is the envelope's encoding when decoding changed nothing: no hook added, no key dropped.
    if (withHook === body.right && onlyEnvelopeKeys(body.right) && decodedAsIs(bytes.right, text)) rememberJson(envelope.right, bytes.right)
    return yield* deps.hooks.invoke(hook, envelope.right).pipe(
      Effect.map((result) => BoundedResponse.json(result)),
      Effect.catchTag("UnknownHook", (error) => Effect.succeed(json(404, "not_found", error.message)))
    )
  })
