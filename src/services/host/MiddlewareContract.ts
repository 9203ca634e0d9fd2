/**
 * The middleware contract (v1): what the host sends a module and what a module must answer.
 * Frozen wire format: golden tests in test/services/MiddlewareContract.test.ts pin the JSON.
 */
import { Schema } from "effect"

/** The middleware contract version this host speaks. */
export const middlewareContractVersion = "1"
/** The host API version this host offers modules. */
export const hostApiVersion = "1"
/** This host's version, sent in `middleware-init`. */
export const hostVersion = "0.1.0"

/** Any JSON value. */
export const JsonValue: Schema.Schema<unknown> = Schema.Unknown

/** Key/value annotations a step may attach to a decision. */
export const Annotations = Schema.Record({ key: Schema.String, value: JsonValue })

/** A unit of work passing through a hook: the input of every middleware step. */
export const WorkflowEnvelope = Schema.Struct({
  id: Schema.NonEmptyString,
  hook: Schema.NonEmptyString,
  subject: Schema.String,
  payload: JsonValue,
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: JsonValue })),
  /** Milliseconds the caller is prepared to wait for the whole hook. */
  deadline_ms: Schema.optional(Schema.Int.pipe(Schema.positive()))
}).pipe(Schema.filter((envelope) => envelope.payload !== undefined || "an envelope needs a payload"))
/** A unit of work passing through a hook. */
export type WorkflowEnvelope = typeof WorkflowEnvelope.Type

const Allow = Schema.Struct({
  decision: Schema.Literal("allow"),
  reason: Schema.optional(Schema.String),
  annotations: Schema.optional(Annotations)
})
const Deny = Schema.Struct({
  decision: Schema.Literal("deny"),
  reason: Schema.String,
  annotations: Schema.optional(Annotations)
})
// `Schema.Unknown` accepts a missing key, so presence of the payload is checked explicitly.
const Modify = Schema.Struct({
  decision: Schema.Literal("modify"),
  reason: Schema.optional(Schema.String),
  /** The payload the next step (and the caller) sees instead. */
  payload: JsonValue,
  annotations: Schema.optional(Annotations)
}).pipe(Schema.filter((decision) => decision.payload !== undefined || "a modify decision needs a payload"))

/** A step's answer: `allow` continues, `modify` replaces the payload, `deny` (with a reason) stops. */
export const MiddlewareDecision = Schema.Union(Allow, Deny, Modify)
/** A step's answer. */
export type MiddlewareDecision = typeof MiddlewareDecision.Type

/** Sent to a module once it is ready: who the host is and the module's config subtree. */
export const MiddlewareInit = Schema.Struct({
  type: Schema.Literal("middleware-init"),
  host_version: Schema.String,
  middleware_contract_version: Schema.String,
  host_api_version: Schema.String,
  component_id: Schema.String,
  module_id: Schema.String,
  config: JsonValue
})
/** Sent to a module once it is ready. */
export type MiddlewareInit = typeof MiddlewareInit.Type

/** A module's answer to `middleware-init`: what it is and which contract it speaks. */
export const ModuleReport = Schema.Struct({
  name: Schema.NonEmptyString,
  description: Schema.String,
  capabilities: Schema.Array(Schema.String),
  middleware_contract_version: Schema.String,
  host_api_version: Schema.String,
  output_contracts: Schema.Array(Schema.String)
})
/** A module's answer to `middleware-init`. */
export type ModuleReport = typeof ModuleReport.Type

/** Builds the `middleware-init` body for a component. */
export const makeMiddlewareInit = (componentId: string, moduleId: string, config: unknown): MiddlewareInit => ({
  type: "middleware-init",
  host_version: hostVersion,
  middleware_contract_version: middlewareContractVersion,
  host_api_version: hostApiVersion,
  component_id: componentId,
  module_id: moduleId,
  config
})

/** Why a report is incompatible with this host, or `undefined` when it is compatible. */
export const reportIncompatibility = (report: ModuleReport): string | undefined => {
  if (report.middleware_contract_version !== middlewareContractVersion) {
    return `module speaks middleware contract ${report.middleware_contract_version}, this host speaks ${middlewareContractVersion}`
  }
  if (report.host_api_version !== hostApiVersion) {
    return `module expects host API ${report.host_api_version}, this host offers ${hostApiVersion}`
  }
  return undefined
}
