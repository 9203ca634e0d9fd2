/**
 * The control API, declared once with `@effect/platform`'s `HttpApi`: every route's parameters, bodies,
 * answers, errors and security. The server is built from it and `GET /v1/openapi.json` is generated from it
 * (`OpenApi.fromApi`), so the document and the routes cannot drift apart.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { JSONSchema, Schema } from "effect"
import { AdminSnapshot } from "../broker/Broker.js"
import { ServerMetricsSnapshot } from "../server/BoundedServer.js"
import { ReadinessDetail, ReadinessWord } from "./ControlReadiness.js"
import { ComponentView } from "./Component.js"
import { BadRequest, Busy, ConfigInvalid, NotFound, TransitionRefused, Unauthorized } from "./ControlApiErrors.js"
import { HookResult } from "./HookRunner.js"
import { HostEvent } from "./HostEvents.js"
import { FailurePolicy } from "./HostConfig.js"
import { ReloadOutcome } from "./HostReload.js"
import { hostVersion, WorkflowEnvelope } from "./MiddlewareContract.js"

/** The cookie a login sets (HttpOnly, SameSite=Strict, Path=/). */
export const sessionCookieName = "corral_session"

/**
 * The header a cookie-authenticated request must carry, with the session's page key (the answer of
 * `POST /v1/session`, or the `#key=` of the page `GET /login` sends to): the status page sends it; a server
 * on another port that receives the cookie does not have it, and other sites cannot send it.
 */
export const pageHeaderName = "x-corral-page"

const authSchemes = {
  bearer: HttpApiSecurity.bearer,
  session: HttpApiSecurity.apiKey({ in: "cookie", key: sessionCookieName })
}

/** Every `/v1/*` route but the OpenAPI document and the login: the token, or a session cookie with its page key. */
export class ControlAuth extends HttpApiMiddleware.Tag<ControlAuth>()("corral/ControlAuth", {
  failure: Unauthorized,
  security: authSchemes
}) {}

/** `/metrics`: the same auth, unless `host.control.metrics_auth` is false. */
export class MetricsAuth extends HttpApiMiddleware.Tag<MetricsAuth>()("corral/MetricsAuth", {
  failure: Unauthorized,
  security: authSchemes
}) {}

const text = (contentType: string) => HttpApiSchema.Text({ contentType })
const ComponentId = Schema.Struct({ id: Schema.String })
const Target = Schema.Literal("ready", "stopped")

/** `POST /v1/components/{id}/start|stop|restart` answers at once (202) ... */
export const ActionAccepted = Schema.Struct({ target: Target, component: ComponentView })
/** ... or with `?wait=1` once the phase has settled (200), saying whether it reached the target. */
export const ActionSettled = Schema.Struct({ target: Target, component: ComponentView, reached: Schema.Boolean })

/** `?wait=1[&timeout_ms=N]` of a component action. */
export const ActionParams = Schema.Struct({
  wait: Schema.optional(Schema.Literal("1", "0", "true", "false")),
  timeout_ms: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
})

const action = <const Name extends "start" | "stop" | "restart">(name: Name) =>
  HttpApiEndpoint.post(name, `/v1/components/:id/${name}`)
    .setPath(ComponentId)
    .setUrlParams(ActionParams)
    .addSuccess(ActionAccepted, { status: 202 })
    .addSuccess(ActionSettled, { status: 200 })
    .addError(NotFound)
    .addError(TransitionRefused)

const components = HttpApiGroup.make("components")
  .add(HttpApiEndpoint.get("list", "/v1/components").addSuccess(Schema.Struct({ components: Schema.Array(ComponentView) })))
  .add(HttpApiEndpoint.get("get", "/v1/components/:id").setPath(ComponentId).addSuccess(ComponentView).addError(NotFound))
  .add(action("start"))
  .add(action("stop"))
  .add(action("restart"))
  .add(
    HttpApiEndpoint.get("logs", "/v1/components/:id/logs")
      .setPath(ComponentId)
      .setUrlParams(Schema.Struct({
        tail: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 10_000))),
        follow: Schema.optional(Schema.Literal("1", "0", "true", "false"))
      }))
      .addSuccess(text("text/plain; charset=utf-8"))
      .addError(NotFound)
      .addError(Busy)
  )
  .middleware(ControlAuth)

/** One event of `GET /v1/events/recent`. */
export const RecentEvent = Schema.Struct({ id: Schema.Number, event: HostEvent })

const events = HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("stream", "/v1/events")
      .setUrlParams(Schema.Struct({
        last_event_id: Schema.optional(Schema.NumberFromString.pipe(Schema.int())),
        page_key: Schema.optional(Schema.String.annotations({
          description: "the session's page key, for a cookie-authenticated EventSource (which cannot send X-Corral-Page)"
        }))
      }))
      .setHeaders(Schema.Struct({ "last-event-id": Schema.optional(Schema.String) }))
      .addSuccess(text("text/event-stream"))
      .addError(Busy)
  )
  .add(
    HttpApiEndpoint.get("recent", "/v1/events/recent")
      .setUrlParams(Schema.Struct({ limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 1_000))) }))
      .addSuccess(Schema.Struct({ events: Schema.Array(RecentEvent) }))
  )
  .middleware(ControlAuth)

/** The body of `POST /v1/hooks/{hook}/invoke`: a WorkflowEnvelope whose `hook` may be left out. */
export const InvokePayload = Schema.Struct({ ...WorkflowEnvelope.from.fields, hook: Schema.optional(Schema.NonEmptyString) })

/** One hook of `GET /v1/hooks`. */
export const HookView = Schema.Struct({ name: Schema.String, components: Schema.Array(Schema.String), failure_policy: FailurePolicy })

const hooks = HttpApiGroup.make("hooks")
  .add(HttpApiEndpoint.get("list", "/v1/hooks").addSuccess(Schema.Struct({ hooks: Schema.Array(HookView) })))
  .add(
    HttpApiEndpoint.post("invoke", "/v1/hooks/:hook/invoke")
      .setPath(Schema.Struct({ hook: Schema.String }))
      .setPayload(InvokePayload)
      .addSuccess(HookResult)
      .addError(BadRequest)
      .addError(NotFound)
      .addError(Busy)
  )
  .middleware(ControlAuth)

const host = HttpApiGroup.make("host")
  .add(HttpApiEndpoint.get("broker", "/v1/broker").addSuccess(AdminSnapshot))
  .add(
    HttpApiEndpoint.get("runtimeMetrics", "/v1/runtime-metrics").addSuccess(Schema.Struct({
      server: ServerMetricsSnapshot,
      resource_pressure: Schema.Unknown.annotations({ description: "descriptor and memory pressure of the host process" })
    }))
  )
  .add(HttpApiEndpoint.post("reload", "/v1/reload").addSuccess(ReloadOutcome).addError(ConfigInvalid))
  .add(
    HttpApiEndpoint.get("config", "/v1/config").addSuccess(Schema.Struct({
      config: Schema.Unknown.annotations({ description: "the effective config, secret-looking values redacted" }),
      sources: Schema.Array(Schema.String)
    }))
  )
  .middleware(ControlAuth)

const session = HttpApiGroup.make("session")
  .add(
    HttpApiEndpoint.post("login", "/v1/session")
      .setPayload(Schema.Struct({ token: Schema.String }))
      .addSuccess(Schema.Struct({
        key: Schema.String.annotations({
          description: "the session's page key (32 random bytes, base64url): send it as X-Corral-Page with the cookie on every request"
        })
      }))
      .addError(Unauthorized)
  )
  .add(HttpApiEndpoint.del("logout", "/v1/session").addSuccess(HttpApiSchema.NoContent).middleware(ControlAuth))
  .add(
    HttpApiEndpoint.post("loginLink", "/v1/login-links")
      .addSuccess(Schema.Struct({ url: Schema.String, expires_at: Schema.String }), { status: 201 })
      .middleware(ControlAuth)
  )
  .add(
    HttpApiEndpoint.get("exchange", "/login")
      .setUrlParams(Schema.Struct({ code: Schema.optional(Schema.String) }))
      .addSuccess(HttpApiSchema.Empty(303).annotations({ description: "the session cookie is set; go to /#key=<page key>" }))
      .addError(text("text/html; charset=utf-8").annotations(HttpApiSchema.annotations({ status: 401 })))
  )

const probes = HttpApiGroup.make("probes")
  .add(HttpApiEndpoint.get("health", "/healthz").addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(
    HttpApiEndpoint.get("ready", "/readyz")
      .addSuccess(Schema.Union(ReadinessWord, ReadinessDetail))
      .addError(Schema.Union(ReadinessWord, ReadinessDetail).annotations(HttpApiSchema.annotations({ status: 503 })))
  )
  .add(HttpApiEndpoint.get("metrics", "/metrics").addSuccess(text("text/plain; version=0.0.4; charset=utf-8")).middleware(MetricsAuth))
  .add(HttpApiEndpoint.get("openapi", "/v1/openapi.json").addSuccess(Schema.Unknown.annotations({ description: "this document" })))

const page = HttpApiGroup.make("page")
  .add(HttpApiEndpoint.get("index", "/").addSuccess(text("text/html; charset=utf-8")).addError(NotFound))
  .add(
    HttpApiEndpoint.get("asset", "/assets/:name")
      .setPath(Schema.Struct({ name: Schema.String }))
      .addSuccess(HttpApiSchema.Uint8Array({ contentType: "application/octet-stream" }))
      .addError(NotFound)
  )

/**
 * What a parameter or body that does not decode is answered (400), as the server sends it: the contract's
 * error shape, not the platform's `HttpApiDecodeError` with its `_tag` and `issues`.
 */
export const BadRequestBody = Schema.Struct({
  error: Schema.Literal("bad_request"),
  message: Schema.String.annotations({ description: "each field that did not decode and why, e.g. \"tail: Expected a number between 0 and 10000\"" })
}).annotations({ description: "The request did not match the expected schema" })

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The generated document with the platform's 400 schema (which every route refers to) replaced by
 * `BadRequestBody`. The platform declares that error on every `HttpApi` and offers no way to swap it, so
 * the document is corrected where it is generated.
 */
export const describeBadRequest = (spec: Record<string, unknown>): Record<string, unknown> => {
  const components = spec["components"]
  if (!isRecord(components) || !isRecord(components["schemas"])) return spec
  const { $schema: _dialect, ...badRequest } = JSONSchema.make(BadRequestBody)
  const { Issue: issue, ...schemas } = components["schemas"]
  const replaced = { ...schemas, HttpApiDecodeError: badRequest }
  // `Issue` was only the platform error's part; kept if anything else still refers to it.
  const stillUsed = issue !== undefined && JSON.stringify(replaced).includes("#/components/schemas/Issue\"")
  return { ...spec, components: { ...components, schemas: stillUsed ? { ...replaced, Issue: issue } : replaced } }
}

/** The host's control API. */
export class ControlApiSpec extends HttpApi.make("corral")
  .add(probes)
  .add(page)
  .add(session)
  .add(components)
  .add(events)
  .add(hooks)
  .add(host)
  .annotate(OpenApi.Title, "Corral control API")
  .annotate(OpenApi.Version, hostVersion)
  .annotate(
    OpenApi.Description,
    "The host's control API on loopback. /v1/* needs Authorization: Bearer <run/control.token>, or the session cookie " +
      "with the session's page key in X-Corral-Page (?page_key= on GET /v1/events). " +
      "A request whose Host is not localhost or a loopback address is refused (403 bad_host)."
  )
  .annotate(OpenApi.Transform, describeBadRequest)
{}
