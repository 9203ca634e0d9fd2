/**
 * The CLI's client of a running host's control API: it finds the host through its data dir
 * (`run/control.json` for the URL, `run/control.token` for the token), calls it over loopback HTTP
 * with a bounded wait, and decodes replies with the host's own schemas. No host layer is imported here:
 * client commands must start fast.
 */
import * as Fs from "node:fs/promises"
import * as Http from "node:http"
import { Effect, ParseResult, Schema } from "effect"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { hostPaths } from "../host/HostPaths.js"
import { bundledModulesDir } from "./HostLocation.js"
import { hostPidState } from "./HostLiveness.js"

/** The data dir the CLI acts on, and whether the user named it (then hints repeat `--data-dir`). */
export interface HostTarget {
  readonly dataDir: string
  readonly named: boolean
}

/** A running host's control API. */
export interface ControlEndpoint {
  readonly target: HostTarget
  readonly url: string
  readonly token: string
  /** Which run of a host this is (its pid and start time): a follow that reconnects tells a restarted host by it. */
  readonly instance: string
}

/** A control call that did not get the answer it needed; `message` is one line for the terminal. */
export class ControlCallError extends Schema.TaggedError<ControlCallError>()("ControlCallError", {
  reason: Schema.Literal("no_host", "unreachable", "rejected", "bad_reply"),
  message: Schema.String
}) {}

/** What `run/control.json` holds. */
export const ControlFile = Schema.Struct({
  url: Schema.String,
  pid: Schema.Number,
  started_at: Schema.optional(Schema.String),
  data_dir: Schema.optional(Schema.String)
})

/** A reply: status, headers and the whole body as text. */
export interface ControlReply {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** How to start a host on this data dir, for messages. */
export const startHint = (target: HostTarget): string =>
  target.named ? `corral up --data-dir ${target.dataDir}` : "corral up"

const noHost = (target: HostTarget, why: string): ControlCallError =>
  new ControlCallError({ reason: "no_host", message: `no host is running in ${target.dataDir} (${why}); start one with: ${startHint(target)}` })

/** Finds the host running in `target.dataDir`, or says there is none and how to start one. */
export const locateHost = (target: HostTarget): Effect.Effect<ControlEndpoint, ControlCallError> =>
  Effect.gen(function*() {
    const paths = hostPaths(target.dataDir, bundledModulesDir)
    const text = yield* Effect.tryPromise({
      try: () => Fs.readFile(paths.controlJson, "utf8"),
      catch: (error) => errorCode(error) === "ENOENT" ? noHost(target, "no run/control.json") : noHost(target, `run/control.json: ${errorText(error)}`)
    })
    const control = yield* Schema.decodeUnknown(Schema.parseJson(ControlFile))(text).pipe(
      Effect.mapError(() => noHost(target, "run/control.json is not a host's"))
    )
    const pidState = yield* hostPidState(control.pid, paths.hostLock)
    if (pidState === "exited") return yield* noHost(target, `run/control.json names pid ${control.pid}, which has exited`)
    if (pidState === "reused") return yield* noHost(target, `run/control.json names pid ${control.pid}, which is another process now`)
    const token = yield* Effect.tryPromise({
      try: () => Fs.readFile(paths.controlToken, "utf8"),
      catch: (error) =>
        errorCode(error) === "ENOENT"
          ? noHost(target, "no run/control.token")
          : new ControlCallError({ reason: "unreachable", message: `cannot read the control token ${paths.controlToken}: ${errorText(error)}; run corral as the host's user` })
    })
    return { target, url: control.url.replace(/\/$/, ""), token: token.trim(), instance: `${control.pid}@${control.started_at ?? ""}` }
  })

/** What to send. */
export interface ControlRequest {
  readonly method: "GET" | "POST" | "DELETE"
  readonly path: string
  readonly body?: string
  readonly headers?: Readonly<Record<string, string>>
  /** The whole exchange must end within this; a stream only its headers. */
  readonly timeoutMs: number
}

const unreachable = (endpoint: ControlEndpoint, error: unknown): ControlCallError =>
  errorCode(error) === "ECONNREFUSED"
    ? noHost(endpoint.target, `nothing answers at ${endpoint.url}`)
    : new ControlCallError({ reason: "unreachable", message: `the host at ${endpoint.url} did not answer: ${errorText(error)}` })

/** `timeoutMs` bounds the whole exchange, or with `headersOnly` the wait for the reply's headers (a stream). */
const open = (
  endpoint: ControlEndpoint,
  request: ControlRequest,
  headersOnly: boolean,
  onResponse: (response: Http.IncomingMessage, done: (result: Effect.Effect<ControlReply, ControlCallError>) => void) => void
): Effect.Effect<ControlReply, ControlCallError> =>
  Effect.async<ControlReply, ControlCallError>((resume) => {
    let settled = false
    const done = (result: Effect.Effect<ControlReply, ControlCallError>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(result)
    }
    const client = Http.request(`${endpoint.url}${request.path}`, {
      method: request.method,
      headers: {
        authorization: `Bearer ${endpoint.token}`,
        ...(request.body === undefined ? {} : { "content-type": "application/json" }),
        ...request.headers
      }
    })
    const timer = setTimeout(() => {
      client.destroy()
      done(Effect.fail(new ControlCallError({ reason: "unreachable", message: `the host at ${endpoint.url} did not answer ${request.method} ${request.path} within ${request.timeoutMs} ms` })))
    }, request.timeoutMs)
    client.on("error", (error) => done(Effect.fail(unreachable(endpoint, error))))
    client.on("response", (response) => {
      if (headersOnly) clearTimeout(timer)
      onResponse(response, done)
    })
    client.end(request.body)
    return Effect.sync(() => {
      clearTimeout(timer)
      client.destroy()
    })
  })

const contentTypeOf = (response: Http.IncomingMessage): string => response.headers["content-type"] ?? ""

/** Sends `request` and reads the whole reply (bounded by `request.timeoutMs`). */
export const call = (endpoint: ControlEndpoint, request: ControlRequest): Effect.Effect<ControlReply, ControlCallError> =>
  open(endpoint, request, false, (response, done) => {
    const chunks: Array<Buffer> = []
    response.on("data", (chunk: Buffer) => chunks.push(chunk))
    response.on("error", (error) => done(Effect.fail(unreachable(endpoint, error))))
    response.on("end", () =>
      done(Effect.succeed({ status: response.statusCode ?? 0, contentType: contentTypeOf(response), body: Buffer.concat(chunks).toString("utf8") })))
  })

/**
 * Sends `request` and hands each chunk of a 2xx body to `onChunk` as it arrives, until the stream ends
 * (the host closed it, the connection broke, or it went idle; the reply then has an empty body); a
 * non-2xx reply is read whole and returned.
 * `idleTimeoutMs` ends a stream that went silent (a host that heartbeats is never idle that long).
 */
export const stream = (
  endpoint: ControlEndpoint,
  request: ControlRequest & { readonly idleTimeoutMs?: number },
  onChunk: (text: string) => void
): Effect.Effect<ControlReply, ControlCallError> =>
  open(endpoint, request, true, (response, done) => {
    const status = response.statusCode ?? 0
    const contentType = contentTypeOf(response)
    response.setEncoding("utf8")
    let body = ""
    const streaming = status >= 200 && status <= 299
    let idle: NodeJS.Timeout | undefined
    const armIdle = () => {
      if (!streaming || request.idleTimeoutMs === undefined) return
      clearTimeout(idle)
      idle = setTimeout(() => response.destroy(), request.idleTimeoutMs)
    }
    armIdle()
    response.on("data", (chunk: string) => {
      armIdle()
      if (streaming) onChunk(chunk)
      else body += chunk
    })
    // A stream that ends, breaks or goes idle has ended the same way for the caller: it may reconnect.
    response.on("error", () => undefined)
    response.on("close", () => {
      clearTimeout(idle)
      done(Effect.succeed({ status, contentType, body }))
    })
  })

/** Reads an error reply (`{"error", "message"}`) as one line. */
export const rejection = (request: Pick<ControlRequest, "method" | "path">, reply: ControlReply): ControlCallError => {
  const parsed = Schema.decodeUnknownOption(Schema.parseJson(Schema.Struct({ error: Schema.String, message: Schema.String })))(reply.body)
  const detail = parsed._tag === "Some" ? `${parsed.value.error}: ${parsed.value.message}` : reply.body.trim().slice(0, 200)
  return new ControlCallError({ reason: "rejected", message: `${request.method} ${request.path} answered ${reply.status}${detail.length > 0 ? ` (${detail})` : ""}` })
}

/** Decodes a JSON reply body with `schema`; a reply of another shape is a `bad_reply` naming the route. */
export const decodeReply = <A, I>(
  request: Pick<ControlRequest, "method" | "path">,
  reply: ControlReply,
  schema: Schema.Schema<A, I>
): Effect.Effect<A, ControlCallError> =>
  Schema.decodeUnknown(Schema.parseJson(schema))(reply.body).pipe(
    Effect.mapError((error) =>
      new ControlCallError({
        reason: "bad_reply",
        message: `unexpected reply to ${request.method} ${request.path}: ${ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => `${issue.path.join(".")}: ${issue.message}`).slice(0, 3).join("; ")}`
      })
    )
  )

/** Sends `request`, expects a 2xx JSON reply and decodes it with `schema`. */
export const callJson = <A, I>(
  endpoint: ControlEndpoint,
  request: ControlRequest,
  schema: Schema.Schema<A, I>
): Effect.Effect<A, ControlCallError> =>
  Effect.flatMap(call(endpoint, request), (reply) =>
    reply.status >= 200 && reply.status <= 299 ? decodeReply(request, reply, schema) : Effect.fail(rejection(request, reply)))
