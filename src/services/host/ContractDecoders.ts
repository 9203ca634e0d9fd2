/**
 * Hand-written decoders for the middleware contract's two per-invocation shapes, for the hook path: an
 * envelope and a module's decision are checked with a few property reads instead of a run of the
 * Schema's decoder. Each only ever says "valid" for a value the Schema also accepts, and then gives the
 * same value (same keys, same order); for anything else it answers `undefined` and the caller decodes
 * with the Schema, which also words the error. `test/services/host/ContractDecoders.test.ts` runs a
 * table of good and bad values through both.
 */
import type { MiddlewareDecision, WorkflowEnvelope } from "./MiddlewareContract.js"

type JsonRecord = Readonly<Record<string, unknown>>

const isPlainRecord = (value: unknown): value is JsonRecord =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Own keys only, as the Schema reads them: an inherited `decision` is no decision. */
const own = (record: JsonRecord, key: string): unknown => Object.hasOwn(record, key) ? record[key] : undefined

/**
 * A `Record(String, Unknown)` field as the Schema decodes it: a copy of its own string keys. A
 * `__proto__` key (JSON.parse makes it an own key) is left to the Schema.
 */
const recordOf = (value: unknown): JsonRecord | undefined => {
  if (!isPlainRecord(value) || Object.hasOwn(value, "__proto__")) return undefined
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(value)) copy[key] = value[key]
  return copy
}

/** `answer` as a `MiddlewareDecision` when it plainly is one; `undefined` when it is not, or only the Schema can tell. */
export const decodeDecisionFast = (answer: unknown): MiddlewareDecision | undefined => {
  if (!isPlainRecord(answer)) return undefined
  const decision = own(answer, "decision")
  const reason = own(answer, "reason")
  if (reason !== undefined && typeof reason !== "string") return undefined
  const hasReason = Object.hasOwn(answer, "reason")
  const hasAnnotations = Object.hasOwn(answer, "annotations")
  const rawAnnotations = own(answer, "annotations")
  const annotations = rawAnnotations === undefined ? undefined : recordOf(rawAnnotations)
  if (rawAnnotations !== undefined && annotations === undefined) return undefined
  // Keys only when the answer has them, in the Schema's field order.
  switch (decision) {
    case "allow":
      return { decision, ...(hasReason ? { reason } : {}), ...(hasAnnotations ? { annotations } : {}) }
    case "deny":
      if (reason === undefined) return undefined
      return { decision, reason, ...(hasAnnotations ? { annotations } : {}) }
    case "modify": {
      const payload = own(answer, "payload")
      if (payload === undefined) return undefined
      return { decision, ...(hasReason ? { reason } : {}), payload, ...(hasAnnotations ? { annotations } : {}) }
    }
    default:
      return undefined
  }
}

const isNonEmptyString = (value: unknown): value is string => typeof value === "string" && value.length > 0

/** `body` as a `WorkflowEnvelope` when it plainly is one; `undefined` when it is not, or only the Schema can tell. */
export const decodeEnvelopeFast = (body: unknown): WorkflowEnvelope | undefined => {
  if (!isPlainRecord(body)) return undefined
  const id = own(body, "id")
  const hook = own(body, "hook")
  const subject = own(body, "subject")
  const payload = own(body, "payload")
  if (!isNonEmptyString(id) || !isNonEmptyString(hook) || typeof subject !== "string" || payload === undefined) return undefined
  const hasMetadata = Object.hasOwn(body, "metadata")
  const rawMetadata = own(body, "metadata")
  const metadata = rawMetadata === undefined ? undefined : recordOf(rawMetadata)
  if (rawMetadata !== undefined && metadata === undefined) return undefined
  const hasDeadline = Object.hasOwn(body, "deadline_ms")
  const deadline = own(body, "deadline_ms")
  if (deadline !== undefined && !(typeof deadline === "number" && Number.isSafeInteger(deadline) && deadline > 0)) return undefined
  return {
    id,
    hook,
    subject,
    payload,
    ...(hasMetadata ? { metadata } : {}),
    ...(hasDeadline ? { deadline_ms: deadline } : {})
  }
}
