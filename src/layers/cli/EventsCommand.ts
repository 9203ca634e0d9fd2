/**
 * `corral events [--json]`: follows `GET /v1/events` (server-sent events) and prints a line per event, or
 * with `--json` one `{"id", "event"}` object per line (the shape of `/v1/events/recent`). When the
 * stream ends it reconnects with `Last-Event-ID`, so nothing the host's ring still holds is lost.
 */
import { Effect, Option, Schema } from "effect"
import { HostEvent } from "../../services/host/HostEvents.js"
import { ControlCallError, type ControlEndpoint, rejection, stream } from "./ControlClient.js"
import { hostEventLine } from "./EventLines.js"
import { makeSseParser, type SseFrame } from "./SseParser.js"

/** The host heartbeats every 15 s: a stream silent for three of those is dead and is reopened. */
const idleTimeoutMs = 45_000
const reconnectDelayMs = 500
const connectTimeoutMs = 10_000
const maxSilentPasses = 5

const decodeEvent = Schema.decodeUnknownOption(Schema.parseJson(HostEvent))

const MissedBefore = Schema.parseJson(Schema.Struct({ missed_before: Schema.Number }))

const printFrame = (frame: SseFrame, json: boolean): void => {
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`)
  }
  if (frame.event === "gap") {
    const gap = Schema.decodeUnknownOption(MissedBefore)(frame.data)
    const before = Option.match(gap, { onNone: () => "?", onSome: (value) => String(value.missed_before) })
    return json ? write(JSON.stringify({ gap: { missed_before: before } })) : write(`(events before id ${before} are gone from the host's memory)`)
  }
  const event = decodeEvent(frame.data)
  const id = Number(frame.id)
  if (json) return write(JSON.stringify({ id, event: Option.getOrElse(event, (): unknown => JSON.parse(frame.data)) }))
  // An event kind this CLI does not know yet is still shown, as its raw data.
  write(`${String(id).padStart(5)}  ${Option.match(event, { onNone: () => `${frame.event}  ${frame.data}`, onSome: hostEventLine })}`)
}

/** Follows the host's events until interrupted (Ctrl-C) or the host goes away. */
export const followEvents = (endpoint: ControlEndpoint, json: boolean): Effect.Effect<void, ControlCallError> =>
  Effect.gen(function*() {
    let lastId: string | undefined
    let announced = false
    let silentPasses = 0
    // Each pass lasts until the host ends the stream (bounded on its side) or it goes idle; a host that
    // keeps closing the stream before sending anything is given up on after a few tries.
    while (silentPasses < maxSilentPasses) {
      const parser = makeSseParser()
      let heard = false
      const request = {
        method: "GET",
        path: "/v1/events",
        headers: { accept: "text/event-stream", ...(lastId === undefined ? {} : { "last-event-id": lastId }) },
        timeoutMs: connectTimeoutMs,
        idleTimeoutMs
      } as const
      const reply = yield* stream(endpoint, request, (chunk) => {
        heard = true
        if (!announced) {
          announced = true
          process.stderr.write(`corral: following the events of ${endpoint.url} (Ctrl-C stops)\n`)
        }
        for (const frame of parser.feed(chunk)) {
          if (frame.id !== undefined) lastId = frame.id
          printFrame(frame, json)
        }
      })
      if (reply.status !== 200) return yield* Effect.fail(rejection(request, reply))
      silentPasses = heard ? 0 : silentPasses + 1
      yield* Effect.sleep(reconnectDelayMs)
    }
    return yield* Effect.fail(
      new ControlCallError({ reason: "bad_reply", message: `${endpoint.url}/v1/events closed ${maxSilentPasses} times without sending anything` })
    )
  })
