/**
 * The broker's Effect metrics (names in services/system/MetricNames.ts): hellos by outcome, launch
 * attempts by service, refusals by code, and the backends-by-state gauge computed from the registry's
 * snapshot when `/metrics` is read.
 */
import { Effect, Metric, MetricKey, MetricPair, MetricState } from "effect"
import type { BackendSnapshot } from "../../services/broker/BackendRegistry.js"
import { BrokerErrorCode } from "../../services/broker/BrokerProtocol.js"
import { BrokerMetricNames } from "../../services/system/MetricNames.js"

const hellosTotal = Metric.counter(BrokerMetricNames.hellosTotal, {
  description: "Hellos answered, by outcome (ok: an endpoint was answered; rejected: an error reply)"
})
const launchesTotal = Metric.counter(BrokerMetricNames.launchesTotal, {
  description: "Backend launch attempts started, by service"
})
const rejectsTotal = Metric.counter(BrokerMetricNames.rejectsTotal, {
  description: "Error replies sent, by code"
})

/** What became of a hello. */
export type HelloOutcome = "ok" | "rejected"

const helloOk = Metric.tagged(hellosTotal, "outcome", "ok")
const helloRejected = Metric.tagged(hellosTotal, "outcome", "rejected")
const rejectsByCode = new Map(BrokerErrorCode.literals.map((code) => [code, Metric.tagged(rejectsTotal, "code", code)] as const))

/** Registers every outcome and code at zero, so a scrape shows the series before the first hello. */
export const registerBrokerMetrics: Effect.Effect<void> = Effect.all(
  [helloOk, helloRejected, ...rejectsByCode.values()].map((counter) => Metric.incrementBy(counter, 0)),
  { discard: true }
)

/** Counts one answered hello. */
export const countHello = (outcome: HelloOutcome): Effect.Effect<void> =>
  Metric.increment(outcome === "ok" ? helloOk : helloRejected)

/** Counts one error reply of `code`. */
export const countReject = (code: BrokerErrorCode): Effect.Effect<void> => {
  const counter = rejectsByCode.get(code)
  return counter === undefined ? Effect.void : Metric.increment(counter)
}

/** Counts one launch attempt of `service` (a defined service: ids come from `services/`, not from clients). */
export const countLaunch = (service: string): Effect.Effect<void> => Metric.increment(Metric.tagged(launchesTotal, "service", service))

const backendStates: ReadonlyArray<BackendSnapshot["state"]> = ["starting", "live", "stopping"]

const backendsKey = MetricKey.gauge(BrokerMetricNames.backends, { description: "Backends known to the broker, by state" })

/** The `corral_broker_backends{state}` series of a registry snapshot, every state present (0 when none). */
export const backendStatePairs = (
  backends: ReadonlyArray<{ readonly state: string }>
): ReadonlyArray<MetricPair.MetricPair.Untyped> =>
  backendStates.map((state) =>
    MetricPair.unsafeMake(
      MetricKey.tagged(backendsKey, "state", state),
      MetricState.gauge(backends.filter((backend) => backend.state === state).length)
    ))
