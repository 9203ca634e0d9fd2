/**
 * `/v1/components`: list, one view, start/stop/restart (202 with the target at once; with `?wait=1` the
 * settled view, whose body follows when the phase settles, bounded by `timeout_ms`, not by the handler
 * deadline), and the log tail and follow.
 */
import * as Path from "node:path"
import { HttpApiBuilder, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Schema, Stream } from "effect"
import type { ComponentView } from "../../../services/host/Component.js"
import { NotFound, TransitionRefused } from "../../../services/host/ControlApiErrors.js"
import { ActionSettled, ControlApiSpec } from "../../../services/host/ControlApiSpec.js"
import type { ImpossibleTransition, UnknownComponent } from "../../../services/host/Supervisor.js"
import type { ControlDependencies } from "./ControlDependencies.js"
import { defaultTailLines, followFile, readTail } from "./LogTail.js"
import { whileAuthorized } from "./RequestAuth.js"
import { busyResponse } from "./Responses.js"

/** How long `?wait=1` waits when the client names no `timeout_ms`, and the most it may name. */
export const defaultWaitMs = 30_000
export const maxWaitMs = 300_000

const isOn = (flag: string | undefined): boolean => flag === "1" || flag === "true"

const notFound = (error: UnknownComponent) => new NotFound({ message: `${error.message}; GET /v1/components lists them` })

type Action = "start" | "stop" | "restart"

/** Whether a settled view is the phase the action aimed at (a never-started component counts as stopped). */
const reached = (target: "ready" | "stopped", view: ComponentView): boolean =>
  target === "ready" ? view.phase === "ready" : view.phase === "stopped" || view.phase === "configured"

const encodeSettled = Schema.encode(Schema.parseJson(ActionSettled))

const act = (deps: ControlDependencies, action: Action, id: string, params: { readonly wait?: string | undefined; readonly timeout_ms?: number | undefined }) =>
  Effect.gen(function*() {
    const target = action === "stop" ? "stopped" as const : "ready" as const
    const component = yield* deps.supervisor[action](id).pipe(
      Effect.catchTags({
        UnknownComponent: (error) => Effect.fail(notFound(error)),
        ImpossibleTransition: (error: ImpossibleTransition) => Effect.fail(new TransitionRefused({ message: error.message }))
      })
    )
    if (!isOn(params.wait)) return { target, component }
    const timeoutMs = Math.min(maxWaitMs, params.timeout_ms ?? defaultWaitMs)
    // The transition is under way; the status goes now and the body once it settles (the component may
    // have been removed meanwhile by a reload: then the last view known answers, not reached).
    const settled = deps.supervisor.settled(id, timeoutMs).pipe(
      Effect.orElseSucceed(() => component),
      Effect.flatMap((view) => encodeSettled({ target, component: view, reached: reached(target, view) })),
      Effect.orDie
    )
    return HttpServerResponse.stream(Stream.encodeText(Stream.fromEffect(settled)), {
      status: 200,
      contentType: "application/json"
    })
  })

/** What the logs route reads of a request. */
interface LogsRequest {
  readonly path: { readonly id: string }
  readonly urlParams: { readonly tail?: number | undefined; readonly follow?: string | undefined }
  readonly request: HttpServerRequest.HttpServerRequest
}

const logs = (deps: ControlDependencies, request: LogsRequest) =>
  Effect.gen(function*() {
    const { id } = request.path
    yield* Effect.mapError(deps.supervisor.get(id), notFound)
    // The id is a configured component's, and component ids are plain file names (checked at load).
    const file = Path.join(deps.logsDir, `${id}.log`)
    const tail = yield* readTail(file, request.urlParams.tail ?? defaultTailLines)
    const headers = { "cache-control": "no-store", "x-content-type-options": "nosniff" }
    const contentType = "text/plain; charset=utf-8"
    if (!isOn(request.urlParams.follow)) return HttpServerResponse.text(tail.text, { contentType, headers })
    if (!deps.streamPermits.holdUntilClosed(request.request)) return busyResponse(deps, "streams_busy")
    const follow = followFile(file, tail.end, { pollMs: deps.timing.followPollMs, maxMs: deps.timing.maxStreamMs })
    const body = Stream.concat(Stream.encodeText(Stream.make(tail.text)), follow)
    return HttpServerResponse.stream(whileAuthorized(deps.credentials, request.request.headers, body), { contentType, headers })
  })

/** The components group of the control API. */
export const componentRoutes = (deps: ControlDependencies) =>
  HttpApiBuilder.group(ControlApiSpec, "components", (handlers) =>
    handlers
      .handle("list", () => Effect.map(deps.supervisor.list, (components) => ({ components })))
      .handle("get", ({ path }) => Effect.mapError(deps.supervisor.get(path.id), notFound))
      .handle("start", ({ path, urlParams }) => act(deps, "start", path.id, urlParams))
      .handle("stop", ({ path, urlParams }) => act(deps, "stop", path.id, urlParams))
      .handle("restart", ({ path, urlParams }) => act(deps, "restart", path.id, urlParams))
      .handle("logs", (request) => logs(deps, request)))
