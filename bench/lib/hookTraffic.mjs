// Hook invocations for the fault campaign and the soak: envelopes with unique ids, each outcome
// classified (`200 allow`, `503 <error>`, `lost: <code>` when no HTTP answer came), every Arca
// acknowledgement (`arca.record_id` in the decision) remembered per envelope id, and one retry with
// the same id after a failure, so Arca's idempotency is exercised under faults too.
import { setTimeout as sleep } from "node:timers/promises"

/** The outcome string of one control-API answer (see the file comment). */
export const outcomeOf = (r) => {
  if (r.error !== undefined) return `lost: ${r.error}`
  if (r.status === 200) return `200 ${r.json?.decision?.decision ?? "?"}`
  return `${r.status} ${r.json?.error ?? r.json?.reason ?? ""}`.trim()
}

/**
 * An action for `startLoop` that invokes `hook` through `control` (see controlClient.mjs). `acks`:
 * a Map envelope id → record id, filled from Arca's annotation. `retries`: outcome counts of the
 * retried calls. Envelope ids are `${prefix}-${i}`; subjects rotate over 32 names.
 */
export const hookAction = ({ control, hook, prefix, acks, retries, timeoutMs = 15_000, payload = () => ({ text: "hello" }) }) => {
  const once = async (envelope) => {
    const r = await control.invoke(hook, envelope, timeoutMs)
    const recordId = r.json?.decision?.annotations?.["arca.record_id"]
    if (r.status === 200 && recordId !== undefined) {
      const before = acks.get(envelope.id)
      // Two acknowledgements of one envelope must name one record: remember a conflict.
      if (before !== undefined && before !== recordId) acks.set(`${envelope.id}#conflict`, recordId)
      else acks.set(envelope.id, recordId)
    }
    return r
  }
  return async (i) => {
    const envelope = { id: `${prefix}-${i}`, hook, subject: `subject-${i % 32}`, payload: payload(i) }
    const first = await once(envelope)
    const outcome = outcomeOf(first)
    if (first.status !== 200 && retries !== undefined) {
      await sleep(200)
      const again = outcomeOf(await once(envelope))
      retries[again] = (retries[again] ?? 0) + 1
    }
    return outcome
  }
}
