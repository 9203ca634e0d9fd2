/**
 * The raw connection interface: one handler run per admitted connection, with the connection
 * permit as its permit, the handler deadline over the whole run, defects logged and counted, and
 * the socket closed when the run ends, however it ends.
 */
import type * as Net from "node:net"
import { performance } from "node:perf_hooks"
import { Clock, Effect, Runtime } from "effect"
import type { Scope } from "effect"
import type { ConnectionHandler } from "../../services/server/BoundedConnection.js"
import type { BoundAddress, ServeError } from "../../services/server/BoundedServer.js"
import { makeConnectionGate } from "./ConnectionGate.js"
import { makeNodeConnection } from "./NodeConnection.js"
import { type RequestRun, runDrain, type ServerCore } from "./ServerCore.js"

/** What a raw server writes to connections it refuses or times out (empty: just close). */
export interface ConnectionReplies {
  readonly overCapacity: Uint8Array
  readonly timedOut: Uint8Array
  /** Told of every failed accept (the broker demotes itself on EMFILE). */
  readonly onAcceptError?: (error: Error) => Effect.Effect<void>
  /**
   * When every permit is held, close the connection idle longest (as its handler reports through
   * `setIdle`) to admit the new one, instead of refusing the new one.
   */
  readonly reclaimIdle?: boolean
}

const route = "connection"

/** Serves `handler` on the core's listener; closing the scope drains. */
export const serveConnectionsWith = <E, R>(
  core: ServerCore,
  handler: ConnectionHandler<E, R>,
  replies: ConnectionReplies
): Effect.Effect<BoundAddress, ServeError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const { config, metrics, runs } = core
    const runtime = yield* Effect.runtime<R>()
    const runFork = Runtime.runFork(runtime)

    const onAccepted = (socket: Net.Socket) => {
      socket.on("error", () => {})
      // Only transitions reach the gate: its idle tracking counts requests, the handler reports states.
      let idle = true
      const setIdle = (next: boolean) => {
        if (next === idle || socket.destroyed) return
        idle = next
        if (next) gate.requestFinished(socket)
        else gate.requestStarted(socket)
      }
      const connection = makeNodeConnection(core.nextRequestId(), socket, setIdle)
      const info = { requestId: connection.id, method: "CONNECT", path: connection.remoteAddress ?? "local", route }
      const program = Effect.suspend(() => handler(connection)).pipe(
        Effect.catchAllCause((cause) => Effect.asVoid(core.runFailed(info, cause)))
      )
      metrics.requestStarted()
      const startedAt = performance.now()
      const fiber = runFork(program)
      const run: RequestRun = { ...info, fiber, stampMs: runs.stamp, interruptedBy: null, connection: socket }
      runs.add(run)
      socket.once("close", () => runs.interruptWhere("client", (r) => r === run))
      fiber.addObserver((exit) => {
        runs.delete(run)
        metrics.requestFinished(route, (performance.now() - startedAt) / 1000)
        if (socket.destroyed) return
        if (exit._tag === "Success") {
          socket.end()
          socket.setTimeout(1_000, () => socket.destroy())
        } else if (run.interruptedBy === "timeout" && replies.timedOut.length > 0) {
          socket.end(replies.timedOut)
          socket.setTimeout(1_000, () => socket.destroy())
        } else {
          socket.destroy()
        }
      })
    }

    const { gate, address } = yield* makeConnectionGate({
      config,
      metrics,
      rejectBytes: replies.overCapacity,
      onAccepted,
      reclaimIdle: replies.reclaimIdle === true,
      onAcceptError: (error) => {
        runFork(replies.onAcceptError === undefined ? core.acceptFailed(error) : Effect.zipRight(core.acceptFailed(error), replies.onAcceptError(error)))
      }
    })

    yield* Effect.addFinalizer(() =>
      runDrain(Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        core.draining = true
        gate.stopAccepting()
        yield* core.drainRuns
        yield* gate.awaitAllClosed(1_000)
        gate.destroyAll()
        const end = yield* Clock.currentTimeMillis
        yield* core.drained(end - start)
      }))
    )
    return address
  })
