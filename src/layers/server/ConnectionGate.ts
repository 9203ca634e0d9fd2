/**
 * The listener and its connection permits. Over capacity (or while draining) a connection gets a
 * fixed reply written in the accept callback, before any parsing, and is closed as soon as the reply
 * is written; no fiber starts. (Node's own `maxConnections` drops the socket without a byte.) A gate
 * that reclaims idle connections (HTTP, the broker) first closes the one idle longest, so idle sockets
 * cannot hold every permit.
 */
import * as Net from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect"
import type { BoundAddress, BoundedServerConfig } from "../../services/server/BoundedServer.js"
import { ServeError } from "../../services/server/BoundedServer.js"
import { inodeOf, removeStaleSocket } from "../system/SocketFiles.js"
import { IdleConnections } from "./IdleConnections.js"
import { PermitGate } from "./PermitGate.js"
import type { ServerMetrics } from "./ServerMetrics.js"

/**
 * Longest a refused socket may wait for its reply to be written before it is destroyed. The reply is
 * small and the socket fresh, so it is written at once and the socket destroyed then: a flood of
 * refused connections must not hold descriptors.
 */
const rejectWriteBoundMs = 100

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
  /**
   * When every permit is held, close the connection idle longest (no request in progress) to admit the
   * new one. Its user reports requests through `requestStarted`/`requestFinished`: the HTTP transport, and
   * raw connection handlers through `BoundedConnection.setIdle`.
   */
  readonly reclaimIdle?: boolean
}

/** A listening socket with connection permits. Its methods run on the event loop only. */
export class ConnectionGate {
  readonly server: Net.Server
  private readonly permits: PermitGate
  private readonly sockets = new Set<Net.Socket>()
  /** Idle connections, tracked only by a gate that reclaims them. */
  private readonly idle: IdleConnections<Net.Socket> | undefined
  private drainingFlag = false
  /** The inode of the socket file this gate bound, so it only ever removes its own. */
  private boundSocketInode: number | undefined = undefined
  private closedWaiters: Array<() => void> = []

  constructor(private readonly options: ConnectionGateOptions) {
    this.permits = new PermitGate(options.config.maxConnections)
    this.idle = options.reclaimIdle === true ? new IdleConnections() : undefined
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
    if (this.drainingFlag || !(this.permits.tryAcquire() || (this.reclaimIdleConnection() && this.permits.tryAcquire()))) {
      this.options.metrics.rejectedConnection()
      this.reject(socket)
      return
    }
    this.sockets.add(socket)
    this.idle?.admitted(socket)
    this.options.metrics.connectionAccepted()
    socket.once("close", () => {
      this.idle?.closed(socket)
      // Absent: reclaimed, its permit already released.
      if (!this.sockets.delete(socket)) return
      this.release()
    })
    this.options.onAccepted(socket)
  }

  private release(): void {
    this.permits.release()
    this.options.metrics.connectionClosed()
    if (this.sockets.size === 0) this.wakeClosedWaiters()
  }

  /** A request arrived on `socket`: it is not idle until it is answered. */
  requestStarted(socket: Net.Socket): void {
    this.idle?.requestStarted(socket)
  }

  /** A request on `socket` was answered or abandoned. */
  requestFinished(socket: Net.Socket): void {
    this.idle?.requestFinished(socket)
  }

  // Closes the connection idle longest and releases its permit now (its 'close' event comes later).
  private reclaimIdleConnection(): boolean {
    const socket = this.idle?.takeLongestIdle()
    if (socket === undefined) return false
    this.sockets.delete(socket)
    socket.destroy()
    this.release()
    return true
  }

  private reject(socket: Net.Socket): void {
    socket.on("error", ignoreError)
    if (this.options.rejectBytes.length === 0) {
      socket.destroy()
      return
    }
    // Destroyed once the reply is written, without reading what the peer sent: the kernel delivers the
    // reply before the reset that unread bytes cause (checked on loopback), and reading them would
    // keep the descriptor for as long as the peer cares to send.
    socket.setTimeout(rejectWriteBoundMs, () => socket.destroy())
    socket.end(this.options.rejectBytes, () => socket.destroy())
  }

  /** Binds the listener; a stale Unix socket file at `path` is removed first. */
  listen(): Effect.Effect<BoundAddress, ServeError> {
    const { config } = this.options
    const path = config.path
    if (path === undefined) return this.bind()
    // A socket file someone still listens on is theirs: never unlinked, the bind fails instead.
    return Effect.flatMap(acceptsConnections(path), (live) =>
      live
        ? Effect.fail(new ServeError({ server: config.name, address: path, message: "another process is listening on this socket; it was left alone" }))
        : Effect.zipRight(Effect.sync(() => clearStaleSocket(path)), this.bind()))
  }

  private bind(): Effect.Effect<BoundAddress, ServeError> {
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
          this.boundSocketInode = inodeOf(config.path)
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
    const path = this.options.config.path
    if (path !== undefined && this.boundSocketInode !== undefined && inodeOf(path) === this.boundSocketInode) clearStaleSocket(path)
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

/** Whether the Unix socket `path` may be live: only a refused connect or a missing file says it is not (a full backlog stalls). */
const acceptsConnections = (path: string): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = Net.createConnection({ path })
    const finish = (accepted: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(accepted))
    }
    const timer = setTimeout(() => finish(true), 250)
    socket.once("connect", () => finish(true))
    socket.once("error", (error: NodeJS.ErrnoException) => finish(error.code !== "ECONNREFUSED" && error.code !== "ENOENT"))
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** Unlinks a stale socket at `path`; anything else there (or an unremovable one) is left for `listen` to report. */
const clearStaleSocket = (path: string): void => {
  try {
    removeStaleSocket(path)
  } catch {
    // Unremovable: binding the path fails and names it.
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
