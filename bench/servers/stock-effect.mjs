// The stock Effect server: @effect/platform-node NodeHttpServer.layer + HttpRouter, served with
// HttpServer.serve() and Layer.launch under NodeRuntime.runMain (default tracer, no middleware).
// GET /hello -> {"hello":"world"}; GET /sleep?ms=N -> sleep, then 200.
// --cap N: the whole app runs under Semaphore.withPermitsIfAvailable(1); no permit -> 503 + Retry-After.
// First stdout line: {"event":"listening","url":...}. SIGTERM: runMain interrupts, the layer closes.
import * as http from "node:http"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { intFlag, sleepMsOf } from "./args.mjs"

const cap = intFlag("cap", 0)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/hello", HttpServerResponse.json({ hello: "world" })),
  HttpRouter.get(
    "/sleep",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const ms = sleepMsOf(request.url)
      if (Number.isNaN(ms)) return HttpServerResponse.json({ error: "bad_request" }, { status: 400 })
      return Effect.zipRight(Effect.sleep(ms), HttpServerResponse.json({ slept_ms: ms }))
    })
  )
)

const overCapacity = HttpServerResponse.unsafeJson({ error: "over_capacity" }, { status: 503, headers: { "retry-after": "1" } })

const app = cap > 0
  ? Effect.flatMap(Effect.makeSemaphore(cap), (semaphore) =>
      Effect.succeed(
        semaphore.withPermitsIfAvailable(1)(router).pipe(
          Effect.map(Option.getOrElse(() => overCapacity))
        )
      )
    )
  : Effect.succeed(router)

const Serve = Layer.unwrapEffect(Effect.map(app, (httpApp) => HttpServer.serve()(httpApp)))

const Server = Serve.pipe(
  Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
)

// Built after the server listens and serve() has attached the app.
const Announce = Layer.effectDiscard(
  HttpServer.addressWith((address) =>
    Effect.sync(() => {
      const url = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : String(address.path)
      process.stdout.write(JSON.stringify({ event: "listening", url, server: "stock-effect", cap }) + "\n")
    })
  )
).pipe(Layer.provide(Server))

NodeRuntime.runMain(Layer.launch(Announce), { disablePrettyLogger: true })
