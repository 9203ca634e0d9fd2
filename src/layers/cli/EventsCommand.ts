/**
 * `corral events [--json]`: follows `GET /v1/events` (server-sent events) and prints a line per event, or
 * with `--json` one `{"id", "event"}` object per line (the shape of `/v1/events/recent`). When the
 * stream ends it reconnects with `Last-Event-ID`, so nothing the host's ring still holds is lost; a
 * restarted host is followed from the start of its ring (`HostReconnect`).
 */
import { Effect, Option, Schema } from "effect"
import { HostEvent } from "../../services/host/HostEvents.js"
import { ControlCallError, type ControlEndpoint, rejection, stream } from "./ControlClient.js"
import { hostEventLine } from "./EventLines.js"
import { hostAway, reconnect } from "./HostReconnect.js"
import { makeSseParser, type SseFrame } from "./SseParser.js"

/** The host heartbeats every 15 s: a stream silent for three of those is dead and is reopened. */
const idleTimeoutMs = 45_000
const reconnectDelayMs = 500
const connectTimeoutMs = 10_000
const maxSilentPasses = 5

const decodeEvent = Schema.decodeUnknownOption(Schema.parseJson(HostEvent))

const decodeJson = Schema.decodeUnknownOption(Schema.parseJson())

const MissedBefore = Schema.parseJson(Schema.Struct({ missed_before: Schema.Number }))

const printFrame = (frame: SseFrame, json: boolean): void => {
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`)
  }
  if (frame.event === "gap") {
    const before = Option.map(Schema.decodeUnknownOption(MissedBefore)(frame.data), (gap) => gap.missed_before)
    return json
      ? write(JSON.stringify({ gap: { missed_before: Option.getOrNull(before) } }))
      : write(`(events before id ${Option.getOrElse(before, () => "?")} are gone from the host's memory)`)
  }
  const event = decodeEvent(frame.data)
  const id = Number(frame.id)
  // An event this CLI cannot decode is passed on as the JSON it is (or as text if it is not JSON).
  if (json) return write(JSON.stringify({ id, event: Option.getOrElse(event, () => Option.getOrElse(decodeJson(frame.data), () => frame.data)) }))
  // An event kind this CLI does not know yet is still shown, as its raw data.
  write(`${String(id).padStart(5)}  ${Option.match(event, { onNone: () => `${frame.event}  ${frame.data}`, onSome: hostEventLine })}`)
}

/**
 * Follows the host's events until interrupted (Ctrl-C) or the host is gone for good. A stream that ends
 * or breaks is reopened after the last id seen; a restarted host (a new run: its ids start again) is
 * followed from the start of its ring.
 */
export const followEvents = (endpoint: ControlEndpoint, json: boolean): Effect.Effect<void, ControlCallError> =>
  Effect.gen(function*() {
    let current = endpoint
    let lastId: string | undefined
    let announced = false
    let silentPasses = 0
    // Each pass lasts until the host ends the stream (bounded on its side) or it goes idle; a host that
    // keeps closing the stream (or failing it) before sending anything is given up on after a few tries.
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
      const reply = yield* Effect.either(stream(current, request, (chunk) => {
        heard = true
        if (!announced) {
          announced = true
          process.stderr.write(`corral: following the events of ${current.url} (Ctrl-C stops)\n`)
        }
        for (const frame of parser.feed(chunk)) {
          if (frame.id !== undefined) lastId = frame.id
          printFrame(frame, json)
        }
      }))
      if (reply._tag === "Left" && !hostAway(reply.left)) return yield* Effect.fail(reply.left)
      if (reply._tag === "Right" && reply.right.status !== 200) return yield* Effect.fail(rejection(request, reply.right))
      silentPasses = heard ? 0 : silentPasses + 1
      yield* Effect.sleep(reconnectDelayMs)
      const next = yield* reconnect(current)
      if (next.restarted) {
        // Its ids start again at 1: resuming after the old run's last id would skip its first events.
        lastId = "0"
        process.stderr.write(`corral: the host restarted; following the events of ${next.endpoint.url}\n`)
      }
      current = next.endpoint
    }
    return yield* Effect.fail(
      new ControlCallError({ reason: "bad_reply", message: `${current.url}/v1/events closed ${maxSilentPasses} times without sending anything` })
    )
  })
