/**
 * The `HttpApi` security middlewares of the control API: `ControlAuth` (the token as a Bearer credential,
 * else a session cookie with its page key) and `MetricsAuth` (the same, unless `host.control.metrics_auth`
 * is false in the config now).
 */
import { HttpServerRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import { ControlAuth, MetricsAuth } from "../../../services/host/ControlApiSpec.js"
import type { HostConfig } from "../../../services/host/HostConfig.js"
import { checkBearer, checkSession, type ControlCredentials } from "./RequestAuth.js"

const bearerOf = (credentials: ControlCredentials) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => checkBearer(credentials, request.headers))

const sessionOf = (credentials: ControlCredentials) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => checkSession(credentials, request.method, request.url, request.headers))

/** `ControlAuth` for the host's token and sessions. */
export const ControlAuthLive = (credentials: ControlCredentials): Layer.Layer<ControlAuth> =>
  Layer.succeed(ControlAuth, { bearer: () => bearerOf(credentials), session: () => sessionOf(credentials) })

/** `MetricsAuth`: open when the config now says `host.control.metrics_auth: false`. */
export const MetricsAuthLive = (credentials: ControlCredentials, config: Effect.Effect<HostConfig>): Layer.Layer<MetricsAuth> => {
  const unlessOpen = <E, R>(check: Effect.Effect<void, E, R>) =>
    Effect.flatMap(config, (now) => now.host.control.metrics_auth ? check : Effect.void)
  return Layer.succeed(MetricsAuth, {
    bearer: () => unlessOpen(bearerOf(credentials)),
    session: () => unlessOpen(sessionOf(credentials))
  })
}
