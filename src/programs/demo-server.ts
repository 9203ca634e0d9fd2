/**
 * The demo server: the demo routes on a bounded server. First stdout line:
 * `{"event":"listening","url":...}`; on SIGTERM/SIGINT it drains, prints `{"event":"stopped",...}`
 * with the final metrics, and exits 0. Logs are JSON lines on stderr.
 */
import { Command, Options } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Deferred, Effect, Layer, Logger, Option } from "effect"
import { demoHandler, demoHttpApp } from "../layers/demo/DemoRoutes.js"
import { makeActor } from "../layers/server/Actor.js"
import { serveHandler, serveHttpApp } from "../layers/server/BoundedServer.js"
import { makeResourcePressureMonitor } from "../layers/system/ResourcePressure.js"
import { logUnreported } from "../layers/cli/Terminal.js"
import { runMain } from "../layers/system/ProcessMain.js"
import type { BoundedServerShape } from "../services/server/BoundedServer.js"

const optionalInt = (name: string, description: string) =>
  Options.integer(name).pipe(Options.withDescription(description), Options.optional)

const flags = {
  port: Options.integer("port").pipe(Options.withDescription("TCP port, 0 for an ephemeral one"), Options.withDefault(0)),
  maxConnections: optionalInt("max-connections", "connections served at once"),
  maxInFlight: optionalInt("max-in-flight", "handler runs at once"),
  handlerTimeoutMs: optionalInt("handler-timeout-ms", "handler deadline"),
  headersTimeoutMs: optionalInt("headers-timeout-ms", "time to receive request headers"),
  shutdownGraceMs: optionalInt("shutdown-grace-ms", "time in-flight requests get on stop"),
  interface: Options.choice("interface", ["handler", "httpapp"]).pipe(
    Options.withDescription("serve the routes through the bounded handler or a mounted HttpRouter"),
    Options.withDefault("handler" as const)
  )
}

const line = (value: unknown): Effect.Effect<void> => Effect.sync(() => void process.stdout.write(`${JSON.stringify(value)}\n`))

const demoServer = Command.make("demo-server", flags, (options) =>
  Effect.gen(function*() {
    const config = {
      name: "demo",
      port: options.port,
      ...Option.match(options.maxConnections, { onNone: () => ({}), onSome: (maxConnections) => ({ maxConnections }) }),
      ...Option.match(options.maxInFlight, { onNone: () => ({}), onSome: (maxInFlight) => ({ maxInFlight }) }),
      ...Option.match(options.handlerTimeoutMs, { onNone: () => ({}), onSome: (handlerTimeoutMs) => ({ handlerTimeoutMs }) }),
      ...Option.match(options.headersTimeoutMs, { onNone: () => ({}), onSome: (headersTimeoutMs) => ({ headersTimeoutMs }) }),
      ...Option.match(options.shutdownGraceMs, { onNone: () => ({}), onSome: (shutdownGraceMs) => ({ shutdownGraceMs }) })
    }
    const started = yield* Deferred.make<BoundedServerShape>()
    // Registered before the server, so it runs after the server's drain.
    yield* Effect.addFinalizer(() =>
      Deferred.poll(started).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.void,
          onSome: (server) =>
            server.pipe(
              Effect.flatMap((s) => s.metrics),
              Effect.flatMap((metrics) => line({ event: "stopped", ...metrics }))
            )
        }))
      )
    )
    const deps = {
      counter: yield* makeActor({ name: "demo.counter", initial: () => 0 }),
      server: Deferred.await(started),
      pressure: yield* makeResourcePressureMonitor
    }
    const server = options.interface === "handler"
      ? yield* serveHandler(config, demoHandler(deps))
      : yield* serveHttpApp(config, demoHttpApp(deps))
    yield* Deferred.succeed(started, server)
    const url = server.address._tag === "Tcp" ? server.address.url : server.address.path
    yield* line({ event: "listening", url, interface: options.interface })
    return yield* Effect.never
  }).pipe(Effect.scoped)
)

const cli = Command.run(demoServer, { name: "corral demo-server", version: "0.1.0" })

cli(process.argv).pipe(
  Effect.tapErrorCause(logUnreported),
  Effect.provide(Layer.mergeAll(NodeContext.layer, Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.jsonLogger)))),
  runMain
)
