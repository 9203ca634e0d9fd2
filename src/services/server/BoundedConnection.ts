/**
 * The bounded server's raw connection interface, for TCP and Unix-socket protocols (the broker):
 * one handler run per admitted connection, under the same permits, deadline, defect and drain rules.
 */
import type { Effect, Option } from "effect"
import { Schema } from "effect"

/** Reading from or writing to a connection failed (the peer reset it, or it was closed). */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  reason: Schema.Literal("Read", "Write", "Closed"),
  message: Schema.String
}) {}

/**
 * One admitted connection, in the project's own terms (the layer behind it holds the socket). Reads are
 * pulled: the peer is not read from between reads (backpressure).
 */
export interface BoundedConnection {
  readonly id: string
  readonly remoteAddress: string | undefined
  /** The next chunk the peer sent, or `None` once it has finished sending. */
  readonly read: Effect.Effect<Option.Option<Uint8Array>, ConnectionError>
  readonly write: (bytes: Uint8Array | string) => Effect.Effect<void, ConnectionError>
  /** Finishes sending; the connection closes once the peer has finished too. */
  readonly end: Effect.Effect<void>
  /** Closes the connection at once, in both directions, dropping what is not yet sent. */
  readonly destroy: Effect.Effect<void>
  /**
   * Tells the server whether the connection is between messages (idle: it may be closed to admit a new
   * connection when every permit is held, if the server reclaims idle ones) or inside one. Starts idle.
   */
  readonly setIdle: (idle: boolean) => void
}

/** A handler of the raw connection interface; the connection closes when it returns. */
export type ConnectionHandler<E = never, R = never> = (connection: BoundedConnection) => Effect.Effect<void, E, R>
