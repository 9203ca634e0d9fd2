/**
 * Host events, lifecycle trace lines and invocation records as one readable line each, for
 * `corral events` and `corral trace`.
 */
import type { HookStep } from "../../services/host/HookRunner.js"
import type { HostEvent } from "../../services/host/HostEvents.js"
import type { MiddlewareDecision } from "../../services/host/MiddlewareContract.js"
import type { InvocationRecord, LifecycleEvent } from "../../services/host/Traces.js"

const list = (label: string, items: ReadonlyArray<string>): string => (items.length === 0 ? "" : ` ${label} ${items.join(",")}`)

const steps = (all: ReadonlyArray<HookStep>): string =>
  all.map((step) => `${step.component}=${step.outcome}${step.error === undefined ? "" : ` (${step.error.message})`}`).join(" ")

const decisionText = (decision: MiddlewareDecision): string =>
  decision.decision === "deny" ? `deny: ${decision.reason}` : decision.decision

/** A phase change: `at  component  from → to  reason (pid, exit)`. */
export const lifecycleLine = (event: LifecycleEvent): string => {
  const exit = event.exit === undefined ? "" : `, exit ${event.exit.signal ?? event.exit.code ?? "?"}`
  const pid = event.pid === null ? "" : ` (pid ${event.pid}${exit})`
  return `${event.at}  ${event.component}  ${event.from} → ${event.to}  ${event.reason}${pid}`
}

/** A hook run: `at  hook  envelope → decision (ms)  component=outcome…`. */
export const invocationLine = (record: Pick<InvocationRecord, "at" | "hook" | "envelope_id" | "decision" | "steps" | "duration_ms">): string =>
  `${record.at}  ${record.hook}  ${record.envelope_id} → ${decisionText(record.decision)} (${record.duration_ms.toFixed(1)} ms)  ${steps(record.steps)}`

/** Any host event, its kind first. */
export const hostEventLine = (event: HostEvent): string => {
  switch (event._tag) {
    case "lifecycle":
      return `lifecycle   ${lifecycleLine(event)}`
    case "health":
      return `health      ${event.at}  ${event.component}  ${event.ok ? "ok" : "FAILED"}  ${event.detail}`
    case "invocation":
      return `invocation  ${invocationLine(event)}`
    case "broker":
      return `broker      ${event.at}  ${event.action} ${event.service}${event.version === null ? "" : `@${event.version}`}${event.pid === null ? "" : ` (pid ${event.pid})`}  ${event.detail}`
    case "reload":
      return event.applied
        ? `reload      ${event.at}  applied${list("added", event.added)}${list("removed", event.removed)}${list("restarted", event.restarted)}`
        : `reload      ${event.at}  refused: ${event.problems.join("; ")}`
  }
}
