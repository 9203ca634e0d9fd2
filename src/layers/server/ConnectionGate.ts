/**
 * The listener and its connection permits. Over capacity (or while draining) a connection gets a
 * fixed reply written in the accept callback, before any parsing, and is closed; no fiber starts.
 * (Node's own `maxConnections` drops the socket without a byte.)
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect"
import type { BoundAddress, BoundedServerConfig } from "../../services/server/BoundedServer.js"
import { ServeError } from "../../services/server/BoundedServer.js"
import { PermitGate } from "./PermitGate.js"
import type { ServerMetrics } from "./ServerMetrics.js"

/** How long a refused socket may linger for the peer to read its reply before it is destroyed. */
const rejectLingerMs = 2_000

const ignoreError = () => {}

/** A complete `HTTP/1.1 503` with `Retry-After` and `Connection: close`. */
export const overCapacityHttpResponse = (retryAfterSeconds: number, error = "over_capacity"): Buffer => {
  const body = `{"error":"${error}"}`
  return Buffer.from(
    `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${retryAfterSeconds}\r\nConnection: close\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    "latin1"
  )
}

/** What the gate does with the sockets it accepts and the errors it meets. */
export interface ConnectionGateOptions {
  readonly config: BoundedServerConfig
  readonly metrics: ServerMetrics
  /** Written to a refused connection before it is closed (empty: close at once). */
  readonly rejectBytes: Uint8Array
  readonly onAccepted: (socket: Net.Socket) => void
  readonly onAcceptError: (error: Error) => void
}

/** A listening socket with connection permits. Its methods run on the event loop only. */
export class ConnectionGate {
  readonly server: Net.Server
  private readonly permits: PermitGate
  private readonly sockets = new Set<Net.Socket>()
  private drainingFlag = false
  private closedWaiters: Array<() => void> = []

  constructor(private readonly options: ConnectionGateOptions) {
    this.permits = new PermitGate(options.config.maxConnections)
    this.server = Net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket))
    this.server.on("error", (error) => {
      if (this.server.listening) options.onAcceptError(error)
    })
  }

  get draining(): boolean {
    return this.drainingFlag
  }

  get openConnections(): number {
    return this.sockets.size
  }

  /** Every accepted socket still open (drain destroys them). */
  get acceptedSockets(): ReadonlySet<Net.Socket> {
    return this.sockets
  }

  private onConnection(socket: Net.Socket): void {
    if (this.drainingFlag || !this.permits.tryAcquire()) {
      this.options.metrics.rejectedConnection()
      this.reject(socket)
      return
    }
    this.sockets.add(socket)
    this.options.metrics.connectionAccepted()
    socket.once("close", () => {
      this.sockets.delete(socket)
      this.permits.release()
      this.options.metrics.connectionClosed()
      if (this.sockets.size === 0) this.wakeClosedWaiters()
    })
    this.options.onAccepted(socket)
  }

  private reject(socket: Net.Socket): void {
    socket.on("error", ignoreError)
    if (this.options.rejectBytes.length === 0) {
      socket.destroy()
      return
    }
    // Read and discard what the peer sent: closing with unread data would reset the connection
    // and could discard our reply before the peer reads it.
    socket.resume()
    socket.setTimeout(rejectLingerMs, () => socket.destroy())
    socket.end(this.options.rejectBytes)
  }

  /** Binds the listener; a stale Unix socket file at `path` is removed first. */
  listen(): Effect.Effect<BoundAddress, ServeError> {
    const { config } = this.options
    const target = config.path !== undefined ? config.path : `${config.host}:${config.port}`
    return Effect.async<BoundAddress, ServeError>((resume) => {
      const onError = (error: Error) => {
        this.server.off("listening", onListening)
        resume(Effect.fail(new ServeError({ server: config.name, address: target, message: error.message })))
      }
      const onListening = () => {
        this.server.off("error", onError)
        const address = this.server.address()
        if (config.path !== undefined) {
          resume(Effect.succeed({ _tag: "Unix", path: config.path }))
        } else if (address !== null && typeof address === "object") {
          const host = address.family === "IPv6" ? `[${address.address}]` : address.address
          resume(Effect.succeed({ _tag: "Tcp", host: address.address, port: address.port, url: `http://${host}:${address.port}` }))
        } else {
          resume(Effect.fail(new ServeError({ server: config.name, address: target, message: "listener has no address" })))
        }
      }
      this.server.once("error", onError)
      this.server.once("listening", onListening)
      if (config.path !== undefined) {
        removeStaleSocket(config.path)
        this.server.listen({ path: config.path })
      } else {
        this.server.listen({ host: config.host, port: config.port })
      }
    })
  }

  /** Stops accepting: later connections are refused by the kernel, queued ones by the gate. */
  stopAccepting(): void {
    this.drainingFlag = true
    this.server.close()
    if (this.options.config.path !== undefined) removeStaleSocket(this.options.config.path)
  }

  /** Destroys every accepted socket still open. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy()
  }

  /** Completes when every accepted socket has closed, or after `boundMs`. */
  awaitAllClosed(boundMs: number): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.sockets.size === 0) return resume(Effect.void)
      const done = () => resume(Effect.void)
      this.closedWaiters.push(done)
      return Effect.sync(() => {
        this.closedWaiters = this.closedWaiters.filter((waiter) => waiter !== done)
      })
    }).pipe(Effect.timeout(boundMs), Effect.ignore)
  }

  private wakeClosedWaiters(): void {
    const waiters = this.closedWaiters
    this.closedWaiters = []
    for (const wake of waiters) wake()
  }
}

const removeStaleSocket = (path: string): void => {
  try {
    if (Fs.lstatSync(path).isSocket()) Fs.unlinkSync(path)
  } catch {
    // absent: nothing to remove
  }
}

/** A gate bound to its listener; the scope's end only closes the listener if nothing drained it. */
export const makeConnectionGate = (
  options: ConnectionGateOptions
): Effect.Effect<{ readonly gate: ConnectionGate; readonly address: BoundAddress }, ServeError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const gate = new ConnectionGate(options)
      return Effect.map(gate.listen(), (address) => ({ gate, address }))
    }),
    ({ gate }) =>
      Effect.sync(() => {
        if (!gate.draining) gate.stopAccepting()
        gate.destroyAll()
      })
  )
