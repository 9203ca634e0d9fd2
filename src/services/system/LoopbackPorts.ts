/**
 * LoopbackPorts: free 127.0.0.1 ports for children that listen on one (`port: "auto"` components,
 * `tcp` broker backends). One instance serves the whole host, so no two children get the same port.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"

/** No free loopback port could be found (the reason names the errno, e.g. `EMFILE`). */
export class NoFreePort extends Schema.TaggedError<NoFreePort>()("NoFreePort", {
  message: Schema.String
}) {}

/** Hands out free loopback ports, each reserved for a while against reuse. */
export interface LoopbackPortsShape {
  readonly allocate: Effect.Effect<number, NoFreePort>
}

/** The host's one port allocator. */
export class LoopbackPorts extends Context.Tag("corral/LoopbackPorts")<LoopbackPorts, LoopbackPortsShape>() {}
