// Bare node:http baseline. GET /hello -> {"hello":"world"}; GET /sleep?ms=N -> sleep, then 200.
// --cap N: at most N handler runs at once (a synchronous counter); over the cap, 503 + Retry-After.
// --headers-timeout-ms N / --check-interval-ms N: Node's headersTimeout and
// connectionsCheckingInterval (Node defaults: 60000 / 30000), set explicitly for the stalled scenario.
// First stdout line: {"event":"listening","url":...}. SIGTERM: close and exit.
import * as http from "node:http"
import { intFlag, sleepMsOf } from "./args.mjs"

const cap = intFlag("cap", 0) // 0: no cap
const headersTimeout = intFlag("headers-timeout-ms", 0) // 0: Node's default
const checkInterval = intFlag("check-interval-ms", 0)

const options = {}
if (headersTimeout > 0) options.headersTimeout = headersTimeout
if (checkInterval > 0) options.connectionsCheckingInterval = checkInterval

const helloBody = '{"hello":"world"}'
const overBody = '{"error":"over_capacity"}'
let inFlight = 0

const json = (res, status, body) => {
  res.statusCode = status
  res.setHeader("content-type", "application/json")
  res.end(body)
}

const server = http.createServer(options, (req, res) => {
  if (cap > 0 && inFlight >= cap) {
    res.statusCode = 503
    res.setHeader("content-type", "application/json")
    res.setHeader("retry-after", "1")
    res.end(overBody)
    return
  }
  inFlight++
  const url = req.url ?? "/"
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  if (req.method === "GET" && path === "/hello") {
    inFlight--
    return json(res, 200, helloBody)
  }
  if (req.method === "GET" && path === "/sleep") {
    const ms = sleepMsOf(url)
    if (Number.isNaN(ms)) {
      inFlight--
      return json(res, 400, '{"error":"bad_request"}')
    }
    setTimeout(() => {
      inFlight--
      json(res, 200, `{"slept_ms":${ms}}`)
    }, ms)
    return
  }
  inFlight--
  json(res, 404, '{"error":"not_found"}')
})

server.listen({ port: 0, host: "127.0.0.1" }, () => {
  const { port } = server.address()
  process.stdout.write(
    JSON.stringify({
      event: "listening",
      url: `http://127.0.0.1:${port}`,
      server: "bare",
      cap,
      headersTimeout: server.headersTimeout,
      connectionsCheckingInterval: checkInterval || "default(30000)"
    }) + "\n"
  )
})

const stop = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
  setTimeout(() => process.exit(0), 1000).unref()
}
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
