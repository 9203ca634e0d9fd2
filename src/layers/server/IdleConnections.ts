/**
 * Which admitted connections are idle (no HTTP request, or no broker frame, in progress), longest idle
 * first. When every connection permit is held, the gate closes the connection idle longest to admit a
 * new one, so idle keep-alive sockets, or sockets that never send a request, cannot lock other clients out. Only
 * event-loop callbacks touch it.
 */
export class IdleConnections<S> {
  /** Requests in progress per busy connection (pipelined requests overlap). */
  private readonly busy = new Map<S, number>()
  /** Idle connections in the order they became idle (a `Set` iterates in insertion order). */
  private readonly idle = new Set<S>()

  /** A connection was admitted: idle until its first request. */
  admitted(connection: S): void {
    this.idle.add(connection)
  }

  /** A request arrived on `connection`. */
  requestStarted(connection: S): void {
    this.busy.set(connection, (this.busy.get(connection) ?? 0) + 1)
    this.idle.delete(connection)
  }

  /** A request on `connection` was answered (or abandoned); with none left it is idle again, newest. */
  requestFinished(connection: S): void {
    const inProgress = this.busy.get(connection)
    // Absent: the connection closed before its response ended; it must not come back as idle.
    if (inProgress === undefined) return
    if (inProgress > 1) {
      this.busy.set(connection, inProgress - 1)
      return
    }
    this.busy.delete(connection)
    this.idle.add(connection)
  }

  /** The connection closed. */
  closed(connection: S): void {
    this.busy.delete(connection)
    this.idle.delete(connection)
  }

  /** Removes and returns the connection idle longest, if any. */
  takeLongestIdle(): S | undefined {
    for (const connection of this.idle) {
      this.idle.delete(connection)
      return connection
    }
    return undefined
  }
}
