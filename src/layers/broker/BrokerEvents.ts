/**
 * Broker `HostEvents`: backend launched, backend exited, hello rejected. The feed is optional: inside
 * the host it is there; a broker built on its own (tests, `makeBroker`) publishes nowhere.
 */
import { Clock, Effect, Option } from "effect"
import { HostEvents } from "../../services/host/HostEvents.js"
import type { BrokerHostEvent } from "../../services/host/HostEvents.js"

/** A broker event without its tag and time (both are added when it is published). */
export type BrokerEventBody = Omit<typeof BrokerHostEvent.Type, "_tag" | "at">

/** Publishes broker events to the host's feed when the context has one. */
export type BrokerEventPublisher = (event: BrokerEventBody) => Effect.Effect<void>

/** The publisher for the current context: to `HostEvents` when present, else a no-op. */
export const brokerEventPublisher: Effect.Effect<BrokerEventPublisher> = Effect.map(
  Effect.serviceOption(HostEvents),
  Option.match({
    onNone: (): BrokerEventPublisher => () => Effect.void,
    onSome: (events): BrokerEventPublisher => (event) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        events.publish({ _tag: "broker", at: new Date(now).toISOString(), ...event }))
  })
)

/** The event body of something that happened to a running backend. */
export const backendEvent = (
  action: "launched" | "exited",
  backend: { readonly service: string; readonly version: string; readonly pid: number },
  detail: string
): BrokerEventBody => ({ action, service: backend.service, version: backend.version, pid: backend.pid, detail })
