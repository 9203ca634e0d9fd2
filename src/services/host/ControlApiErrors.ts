/**
 * The control API's errors as they go on the wire: `{"error": "<code>", "message": "<what to do>"}`, each
 * with its HTTP status. They are classes, so the `HttpApi` declaration tells them apart when it encodes one.
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** No valid token or session: send `Authorization: Bearer <run/control.token>` or log in. */
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(
  { error: Schema.tag("unauthorized"), message: Schema.String },
  HttpApiSchema.annotations({ status: 401, description: "no valid bearer token or session cookie" })
) {}

/** The request could not be understood (a bad parameter or body). */
export class BadRequest extends Schema.Class<BadRequest>("BadRequest")(
  { error: Schema.Literal("bad_request", "bad_envelope", "bad_path", "too_deep"), message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** No such component, hook, asset or route. */
export class NotFound extends Schema.Class<NotFound>("NotFound")(
  { error: Schema.tag("not_found"), message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The component cannot make that transition (not supervised, disabled...). */
export class TransitionRefused extends Schema.Class<TransitionRefused>("TransitionRefused")(
  { error: Schema.tag("impossible_transition"), message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** The config on disk has problems: the reload changed nothing. */
export class ConfigInvalid extends Schema.Class<ConfigInvalid>("ConfigInvalid")(
  { error: Schema.tag("config_invalid"), message: Schema.String, problems: Schema.Array(Schema.String) },
  HttpApiSchema.annotations({ status: 422 })
) {}

/** Every permit of that kind (hook invocations, open streams) is taken: retry later. */
export class Busy extends Schema.Class<Busy>("Busy")(
  { error: Schema.Literal("hooks_busy", "streams_busy"), message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}
