/**
 * The component commands of the CLI, as calls to a running host's control API: `status` (a table, or
 * the exact `GET /v1/components` body with `--json`), `logs <id> [-n N] [-f]` and
 * `start|stop|restart <id> [--wait] [--timeout S]`.
 */
import { Effect, Schema } from "effect"
import { ComponentView } from "../../services/host/Component.js"
import {
  call,
  type ControlCallError,
  type ControlEndpoint,
  decodeReply,
  rejection,
  stream
} from "./ControlClient.js"
import { renderStatusTable } from "./StatusTable.js"
import { hostAway, reconnect } from "./HostReconnect.js"
import { type ReportedFailure, reportFailure, stderrLine, stdoutLine } from "./Terminal.js"
import { colourEnabled } from "./TerminalStyle.js"

/** An ordinary call's bound: the host answers these at once. */
export const callTimeoutMs = 10_000

const ComponentList = Schema.Struct({ components: Schema.Array(ComponentView) })

/** The width the status table may use: the terminal's, else `$COLUMNS`, else none (piped output keeps everything). */
const outputWidth = (): number | undefined => {
  if (process.stdout.isTTY === true && process.stdout.columns > 0) return process.stdout.columns
  const columns = Number(process.env["COLUMNS"])
  return Number.isInteger(columns) && columns > 0 ? columns : undefined
}

/** `corral status`: the components as a table, or with `json` exactly the body `GET /v1/components` returned. */
export const status = (endpoint: ControlEndpoint, json: boolean): Effect.Effect<void, ControlCallError> =>
  Effect.gen(function*() {
    const request = { method: "GET", path: "/v1/components", timeoutMs: callTimeoutMs } as const
    const reply = yield* call(endpoint, request)
    if (reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
    const { components } = yield* decodeReply(request, reply, ComponentList)
    if (json) return yield* Effect.sync(() => process.stdout.write(reply.body.endsWith("\n") ? reply.body : `${reply.body}\n`))
    const lines = renderStatusTable(components, Date.now(), { width: outputWidth(), colour: colourEnabled(process.stdout) })
    yield* stdoutLine(components.length === 0 ? "no components are configured" : lines.join("\n"))
  })

const componentPath = (id: string) => `/v1/components/${encodeURIComponent(id)}`

/** How long a followed log waits before reconnecting after its stream ended (the host ends it hourly). */
const reconnectDelayMs = 500

/**
 * `corral logs <id>`: the last `lines` lines of the component's stdout and stderr; with `follow`, new
 * lines as they come, across the host's hourly end of the stream and a restart of the host (`reconnect`),
 * until Ctrl-C or the host is gone for good.
 */
export const logs = (endpoint: ControlEndpoint, id: string, lines: number, follow: boolean): Effect.Effect<void, ControlCallError> =>
  Effect.gen(function*() {
    const write = (text: string) => process.stdout.write(text)
    if (!follow) {
      // The host sends the tail at once: a reply that stalls is bounded like any call.
      const request = { method: "GET", path: `${componentPath(id)}/logs?tail=${lines}`, timeoutMs: callTimeoutMs, idleTimeoutMs: callTimeoutMs } as const
      const reply = yield* stream(endpoint, request, write)
      return reply.status === 200 ? undefined : yield* Effect.fail(rejection(request, reply))
    }
    let current = endpoint
    let tail = lines
    // Each pass is bounded by the host (a follow ends within the hour) and resumes with no backlog.
    while (true) {
      const request = { method: "GET", path: `${componentPath(id)}/logs?tail=${tail}&follow=1`, timeoutMs: callTimeoutMs } as const
      const reply = yield* Effect.either(stream(current, request, write))
      if (reply._tag === "Left" && !hostAway(reply.left)) return yield* Effect.fail(reply.left)
      if (reply._tag === "Right" && reply.right.status !== 200) return yield* Effect.fail(rejection(request, reply.right))
      tail = 0
      yield* Effect.sleep(reconnectDelayMs)
      const next = yield* reconnect(current)
      if (next.restarted) yield* stderrLine(`corral: the host restarted (now ${next.endpoint.url}); following ${id} there (lines written meanwhile are not shown)`)
      current = next.endpoint
    }
  })

const Target = Schema.Literal("ready", "stopped")
const ActionAccepted = Schema.Struct({ target: Target, component: ComponentView })
const ActionSettled = Schema.Struct({ target: Target, component: ComponentView, reached: Schema.Boolean })

/** A component action. */
export type Action = "start" | "stop" | "restart"

/**
 * `corral start|stop|restart <id>`: without `waitSeconds`, says what the host accepted; with it, waits
 * until the phase settles and fails (exit 1, with the phase and last error) unless it is the target.
 * With `json`, the reply body is printed instead of the sentence (the exit code is the same).
 */
export const act = (
  endpoint: ControlEndpoint,
  action: Action,
  id: string,
  waitSeconds: number | undefined,
  json: boolean
): Effect.Effect<void, ControlCallError | ReportedFailure> =>
  Effect.gen(function*() {
    const base = `${componentPath(id)}/${action}`
    if (waitSeconds === undefined) {
      const request = { method: "POST", path: base, timeoutMs: callTimeoutMs } as const
      const reply = yield* call(endpoint, request)
      if (reply.status !== 202) return yield* Effect.fail(rejection(request, reply))
      const accepted = yield* decodeReply(request, reply, ActionAccepted)
      if (json) return yield* stdoutLine(reply.body.trimEnd())
      return yield* stdoutLine(`${id}: ${action} accepted, heading for ${accepted.target} (now ${accepted.component.phase}); add --wait to wait for it`)
    }
    const timeoutMs = Math.round(waitSeconds * 1000)
    // The host answers when the phase settles or its own timeout passes; allow it time to say so.
    const request = { method: "POST", path: `${base}?wait=1&timeout_ms=${timeoutMs}`, timeoutMs: timeoutMs + callTimeoutMs } as const
    const reply = yield* call(endpoint, request)
    if (reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
    const settled = yield* decodeReply(request, reply, ActionSettled)
    if (json) yield* stdoutLine(reply.body.trimEnd())
    const { component, target } = settled
    if (settled.reached) {
      return json ? undefined : yield* stdoutLine(`${id}: ${component.phase}${component.pid === null ? "" : ` (pid ${component.pid})`}`)
    }
    const why = component.last_error === null ? "" : `: ${component.last_error.split("\n").join(" ⏎ ")}`
    return yield* reportFailure(`corral: ${id} did not reach ${target} within ${waitSeconds} s; it is ${component.phase}${why}`)
  })
