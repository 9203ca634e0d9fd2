/**
 * Free loopback ports for children that listen on one. The kernel picks a free port (bind to 0,
 * close); ports handed out recently are remembered so concurrent starts never get the same one. A
 * probe that finds the process (or the system) out of descriptors is retried for a few seconds: a
 * flood of connections passes, and a restart during it must not fail for good.
 */
import * as Net from "node:net"
import { Clock, Effect, Layer, Ref, Schedule } from "effect"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { LoopbackPorts, type LoopbackPortsShape, NoFreePort } from "../../services/system/LoopbackPorts.js"

/** How long a handed-out port stays reserved against reuse. */
const reservationMs = 60_000

/** Kernel-picked ports tried before giving up (each one already reserved is skipped). */
const attempts = 20

/** Errors that mean "out of descriptors for now": `EMFILE` (this process), `ENFILE` (the system). */
const descriptorExhaustion: ReadonlySet<string> = new Set(["EMFILE", "ENFILE"])

/** Retries of a probe that ran out of descriptors: 50 ms doubling, six times (about 3 s in all). */
const exhaustionRetries = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(6)))

interface ProbeFailure {
  readonly exhausted: boolean
  readonly message: string
}

const probeOnce: Effect.Effect<number, ProbeFailure> = Effect.async<number, ProbeFailure>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => {
    const code = errorCode(error)
    resume(Effect.fail({ exhausted: code !== undefined && descriptorExhaustion.has(code), message: errorText(error) }))
  })
  server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
    const address = server.address()
    const port = address !== null && typeof address === "object" ? address.port : 0
    server.close(() =>
      resume(port > 0 ? Effect.succeed(port) : Effect.fail({ exhausted: false, message: "the kernel assigned no port" }))
    )
  })
})

const probeFreePort: Effect.Effect<number, NoFreePort> = probeOnce.pipe(
  Effect.retry({ schedule: exhaustionRetries, while: (failure) => failure.exhausted }),
  Effect.mapError((failure) =>
    new NoFreePort({
      message: failure.exhausted
        ? `${failure.message} (still out of descriptors after retrying for about 3 s; raise the host's open-file limit or shed load)`
        : failure.message
    })
  )
)

/** A port allocator with its own reservation list; a host builds exactly one (`LoopbackPortsLive`). */
export const makeLoopbackPorts: Effect.Effect<LoopbackPortsShape> = Effect.map(
  Ref.make<ReadonlyMap<number, number>>(new Map()),
  (reserved) => ({
    allocate: Effect.gen(function*() {
      for (let attempt = 0; attempt < attempts; attempt++) {
        const port = yield* probeFreePort
        const now = yield* Clock.currentTimeMillis
        const taken = yield* Ref.modify(reserved, (map) => {
          const live = new Map([...map].filter(([, at]) => now - at < reservationMs))
          if (live.has(port)) return [true, live] as const
          live.set(port, now)
          return [false, live] as const
        })
        if (!taken) return port
      }
      return yield* new NoFreePort({ message: `every port the kernel offered in ${attempts} attempts was already handed out` })
    })
  })
)

/** The host's one loopback port allocator. */
export const LoopbackPortsLive: Layer.Layer<LoopbackPorts> = Layer.effect(LoopbackPorts, makeLoopbackPorts)
