/**
 * Free loopback ports for `port: "auto"` components. The kernel picks a free port (bind to 0,
 * close); ports handed out recently are remembered so concurrent starts never get the same one.
 */
import * as Net from "node:net"
import { Clock, Effect, Ref } from "effect"

/** How long a handed-out port stays reserved against reuse. */
const reservationMs = 60_000

const probeFreePort: Effect.Effect<number, Error> = Effect.async<number, Error>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => resume(Effect.fail(error)))
  server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
    const address = server.address()
    const port = address !== null && typeof address === "object" ? address.port : 0
    server.close(() => resume(port > 0 ? Effect.succeed(port) : Effect.fail(new Error("no port assigned"))))
  })
})

/** Hands out free loopback ports. */
export interface LoopbackPorts {
  readonly allocate: Effect.Effect<number, Error>
}

/** A port allocator with its own reservation list. */
export const makeLoopbackPorts: Effect.Effect<LoopbackPorts> = Effect.map(
  Ref.make<ReadonlyMap<number, number>>(new Map()),
  (reserved) => ({
    allocate: Effect.gen(function*() {
      for (let attempt = 0; attempt < 20; attempt++) {
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
      return yield* Effect.fail(new Error("no free loopback port after 20 attempts"))
    })
  })
)
