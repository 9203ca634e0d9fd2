/**
 * `GET /v1/events` as server-sent events: `id`, `event` (the event's `_tag`) and `data` (its JSON) per event;
 * a resume after `Last-Event-ID` first replays what the ring still holds, preceded by `event: gap` when some
 * of what the client missed is gone; a `: heartbeat` comment keeps proxies from closing a quiet stream; the
 * stream ends after `maxMs` (the client reconnects with its last id and loses nothing the ring still holds).
 */
import { Effect, Schedule, Stream } from "effect"
import type { HostEventsShape, NumberedEvent } from "../../../services/host/HostEvents.js"

/** One event as an SSE frame. */
export const eventFrame = (numbered: NumberedEvent): string =>
  `id: ${numbered.id}\nevent: ${numbered.event._tag}\ndata: ${JSON.stringify(numbered.event)}\n\n`

/** The frame telling a resuming client that events before `oldestHeld` are gone. */
export const gapFrame = (oldestHeld: number): string => `event: gap\ndata: ${JSON.stringify({ missed_before: oldestHeld })}\n\n`

/** The last event id a client saw: the `Last-Event-ID` header, else `?last_event_id=`; none when neither is a number. */
export const resumeAfter = (header: string | undefined, query: number | undefined): number | undefined => {
  const fromHeader = header === undefined ? Number.NaN : Number(header.trim())
  if (Number.isSafeInteger(fromHeader) && fromHeader >= 0) return fromHeader
  return query !== undefined && query >= 0 ? query : undefined
}

/** The SSE stream of `events` for a client resuming after `afterId` (none: live events only). */
export const eventStream = (
  events: HostEventsShape,
  afterId: number | undefined,
  options: { readonly heartbeatMs: number; readonly maxMs: number }
): Stream.Stream<string> =>
  Stream.unwrapScoped(Effect.map(events.subscribe(afterId), (subscription) => {
    const first = subscription.backlog[0]
    // A comment first, so the client sees the stream open even when nothing happens for a while.
    const opening = [
      ": connected\n\n",
      ...(subscription.gap && first !== undefined ? [gapFrame(first.id)] : []),
      ...subscription.backlog.map(eventFrame)
    ]
    const heartbeats = Stream.fromSchedule(Schedule.spaced(options.heartbeatMs)).pipe(Stream.as(": heartbeat\n\n"))
    return Stream.concat(
      Stream.fromIterable(opening),
      Stream.merge(Stream.map(subscription.live, eventFrame), heartbeats, { haltStrategy: "either" })
    ).pipe(Stream.interruptAfter(options.maxMs))
  }))
