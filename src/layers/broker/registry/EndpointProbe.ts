/**
 * Endpoint probes: whether a backend's endpoint accepts a connection — once (`connectProbe`), until
 * it does (readiness), or a few times in a row before it is declared dead (liveness).
 */
import * as Net from "node:net"
import { Effect } from "effect"
import type { Endpoint } from "../../../services/broker/BrokerProtocol.js"

/** Whether an endpoint accepts a connection; the registry's default is `connectProbe`, simulations replace it. */
export type EndpointProbe = (endpoint: Endpoint) => Effect.Effect<boolean>

/** How long one connect attempt of a readiness or liveness probe may take. */
export const probeTimeoutMs = 250

/** Pause between readiness probes. */
export const readyPollMs = 10

/** Failed connects in a row before a live backend is declared dead: a full backlog is not death. */
export const livenessAttempts = 3

/** Pause between the connects of one liveness probe. */
const livenessPauseMs = 20

/** An endpoint as messages name it: its socket path, or `host:port`. */
export const endpointText = (endpoint: Endpoint): string =>
  endpoint.kind === "unix" ? endpoint.path : `${endpoint.host}:${endpoint.port}`

/** One connect attempt to `endpoint`, bounded by `timeoutMs`; true when it was accepted. */
export const connectProbe = (endpoint: Endpoint, timeoutMs: number = probeTimeoutMs): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = endpoint.kind === "unix"
      ? Net.createConnection({ path: endpoint.path })
      : Net.createConnection({ host: endpoint.host, port: endpoint.port })
    let settled = false
    const finish = (accepted: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(accepted))
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on("error", () => finish(false))
    socket.once("connect", () => finish(true))
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** Probes every `readyPollMs` until `endpoint` accepts a connection (the caller bounds it). */
export const awaitAccepting = (probe: EndpointProbe, endpoint: Endpoint): Effect.Effect<void> => {
  const poll: Effect.Effect<void> = Effect.flatMap(probe(endpoint), (ready) =>
    ready ? Effect.void : Effect.zipRight(Effect.sleep(readyPollMs), poll))
  return poll
}

/** Alive unless `exited` already holds or `endpoint` refuses `livenessAttempts` connects in a row. */
export const isAlive = (probe: EndpointProbe, endpoint: Endpoint, exited: Effect.Effect<boolean>): Effect.Effect<boolean> => {
  const attempt = (left: number): Effect.Effect<boolean> =>
    Effect.flatMap(probe(endpoint), (accepted) =>
      accepted || left <= 1 ? Effect.succeed(accepted) : Effect.zipRight(Effect.sleep(livenessPauseMs), attempt(left - 1)))
  return Effect.flatMap(exited, (done) => (done ? Effect.succeed(false) : attempt(livenessAttempts)))
}
