/**
 * The host-wide commands of the CLI, as calls to a running host's control API: `invoke <hook>`,
 * `metrics`, `reload` and `open` (a one-time login link to the status page).
 */
import * as Fs from "node:fs/promises"
import { Effect, Schema } from "effect"
import { HookResult } from "../../services/host/HookRunner.js"
import { ReloadOutcome } from "../../services/host/HostReload.js"
import { errorText } from "../../services/system/ErrorDetails.js"
import { callTimeoutMs } from "./ComponentCommands.js"
import { call, type ControlCallError, type ControlEndpoint, decodeReply, rejection } from "./ControlClient.js"
import { type ReportedFailure, reportFailure, stderrLine, stdoutLine } from "./Terminal.js"

/** Where `invoke` takes its envelope from. */
export type EnvelopeSource =
  | { readonly _tag: "Inline"; readonly json: string }
  | { readonly _tag: "File"; readonly path: string }
  | { readonly _tag: "Stdin" }
  | { readonly _tag: "None" }

/** An envelope larger than this is refused before it is sent (the host's body limit is smaller still). */
const maxEnvelopeBytes = 1_048_576

const readStdin = (): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    process.stdin.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > maxEnvelopeBytes) {
        process.stdin.destroy()
        reject(new Error(`more than ${maxEnvelopeBytes} bytes`))
      } else chunks.push(chunk)
    })
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    process.stdin.on("error", reject)
  })

const envelopeText = (source: EnvelopeSource): Effect.Effect<string | undefined, ReportedFailure> => {
  switch (source._tag) {
    case "Inline":
      return Effect.succeed(source.json)
    case "None":
      return Effect.succeed(undefined)
    case "File":
      return Effect.tryPromise(() => Fs.readFile(source.path, "utf8")).pipe(
        Effect.catchAll((error) => reportFailure(`corral: cannot read the envelope file ${source.path}: ${errorText(error.error)}`))
      )
    case "Stdin":
      return Effect.tryPromise(readStdin).pipe(
        Effect.catchAll((error) => reportFailure(`corral: cannot read the envelope from stdin: ${errorText(error.error)}`))
      )
  }
}

/** The envelope to send: the given JSON object (with a generated `id` when it has none), else a minimal one. */
const envelopeFor = (hook: string, text: string | undefined): Effect.Effect<string, ReportedFailure> => {
  const generatedId = `cli-${Date.now()}`
  if (text === undefined) return Effect.succeed(JSON.stringify({ id: generatedId, hook, subject: "cli", payload: {} }))
  return Effect.try((): unknown => JSON.parse(text)).pipe(
    Effect.catchAll(() => reportFailure("corral: the envelope is not JSON; give an object like '{\"subject\": \"alice\", \"payload\": {}}'")),
    Effect.flatMap((value) =>
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? Effect.succeed(JSON.stringify("id" in value ? value : { id: generatedId, ...value }))
        : reportFailure("corral: the envelope must be a JSON object like '{\"subject\": \"alice\", \"payload\": {}}'"))
  )
}

/** `corral invoke <hook>`: runs the hook once and prints its decision and steps (or with `json` the reply body). */
export const invoke = (
  endpoint: ControlEndpoint,
  hook: string,
  source: EnvelopeSource,
  json: boolean
): Effect.Effect<void, ControlCallError | ReportedFailure> =>
  Effect.gen(function*() {
    const body = yield* Effect.flatMap(envelopeText(source), (text) => envelopeFor(hook, text))
    const request = { method: "POST", path: `/v1/hooks/${encodeURIComponent(hook)}/invoke`, body, timeoutMs: 5 * 60_000 } as const
    const reply = yield* call(endpoint, request)
    if (reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
    const result = yield* decodeReply(request, reply, HookResult)
    if (json) return yield* stdoutLine(reply.body.trimEnd())
    const decision = result.decision
    const reason = decision.reason === undefined ? "" : `: ${decision.reason}`
    const width = Math.max(0, ...result.steps.map((step) => step.component.length))
    yield* stdoutLine([
      `${hook}: ${decision.decision}${reason}`,
      ...result.steps.map((step) =>
        `  ${step.component.padEnd(width)}  ${step.outcome.padEnd(8)} ${step.duration_ms.toFixed(1).padStart(7)} ms${step.error === undefined ? "" : `  ${step.error.message}`}`)
    ].join("\n"))
  })

/** `corral metrics`: the host's Prometheus text, as served on `/metrics`. */
export const metrics = (endpoint: ControlEndpoint): Effect.Effect<void, ControlCallError> =>
  Effect.gen(function*() {
    const request = { method: "GET", path: "/metrics", timeoutMs: callTimeoutMs } as const
    const reply = yield* call(endpoint, request)
    if (reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
    yield* Effect.sync(() => process.stdout.write(reply.body))
  })

const ConfigInvalid = Schema.Struct({ error: Schema.String, message: Schema.String, problems: Schema.Array(Schema.String) })

const names = (label: string, ids: ReadonlyArray<string>): ReadonlyArray<string> => ids.length === 0 ? [] : [`${label} ${ids.join(", ")}`]

/** `corral reload`: asks the host to re-read its config; prints what changed, or every problem (exit 1). */
export const reload = (endpoint: ControlEndpoint, json: boolean): Effect.Effect<void, ControlCallError | ReportedFailure> =>
  Effect.gen(function*() {
    // A reload starts and stops components: it may take as long as their start-up timeouts.
    const request = { method: "POST", path: "/v1/reload", timeoutMs: 5 * 60_000 } as const
    const reply = yield* call(endpoint, request)
    if (reply.status === 422) {
      const invalid = yield* decodeReply(request, reply, ConfigInvalid)
      if (json) yield* stdoutLine(reply.body.trimEnd())
      yield* stderrLine(`corral: the config has ${invalid.problems.length} problem(s); nothing was changed:`)
      for (const problem of invalid.problems) yield* stderrLine(`  ${problem}`)
      return yield* reportFailure(`corral: fix them and run corral reload again`)
    }
    if (reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
    const outcome = yield* decodeReply(request, reply, ReloadOutcome)
    if (json) return yield* stdoutLine(reply.body.trimEnd())
    const changes = [
      ...names("added", outcome.added),
      ...names("removed", outcome.removed),
      ...names("restarted", outcome.restarted)
    ]
    yield* stdoutLine(`reloaded: ${changes.length === 0 ? "no component changed" : changes.join("; ")}${outcome.unchanged.length === 0 ? "" : ` (unchanged: ${outcome.unchanged.join(", ")})`}`)
  })

const LoginLink = Schema.Struct({ url: Schema.String, expires_at: Schema.String })

/** `corral open`: prints a one-time login link to the status page (stdout: the URL alone). */
export const open = (endpoint: ControlEndpoint, json: boolean): Effect.Effect<void, ControlCallError> =>
  Effect.gen(function*() {
    const request = { method: "POST", path: "/v1/login-links", timeoutMs: callTimeoutMs } as const
    const reply = yield* call(endpoint, request)
    if (reply.status !== 201 && reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
    const link = yield* decodeReply(request, reply, LoginLink)
    if (json) return yield* stdoutLine(reply.body.trimEnd())
    yield* stdoutLine(link.url)
    yield* stderrLine(`corral: open it in a browser on this machine; it logs in once, until ${link.expires_at}`)
  })
