// The floor under the host's hook path: the CPU a bare `node:http` proxy spends per request when it does
// only the transport the host does (read a JSON body, parse it, POST it to a backend on a kept-alive
// agent with a timer, parse the answer, write a JSON reply). No Effect, no auth, no trace. A figure to
// hold `bench/host.mjs`'s "host CPU per hook step" against: whatever the host spends beyond it is its own.
//
//   node bench/host-floor.mjs [--requests 10000] [--concurrency 16]
//
// Three processes on 127.0.0.1 (this client, the proxy, a node backend that answers {"decision":"allow"}),
// forked here and killed by pid at the end; the proxy's CPU comes from its own process.cpuUsage().
import { fork } from "node:child_process"
import http from "node:http"
import { parseArgs } from "./lib/args.mjs"

const role = process.argv[2]
if (role === "backend") {
  http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      res.setHeader("content-type", "application/json")
      res.end('{"decision":"allow"}')
    })
  }).listen(0, "127.0.0.1", function() {
    process.send(this.address().port)
  })
} else if (role === "proxy") {
  const port = Number(process.argv[3])
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 16 })
  http.createServer((req, res) => {
    const chunks = []
    req.on("data", (d) => chunks.push(d))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      JSON.parse(body.toString())
      const headers = { "content-type": "application/json", "content-length": body.length, "x-corral-deadline-ms": String(Date.now() + 1000) }
      const out = http.request({ agent, host: "127.0.0.1", port, method: "POST", path: "/invoke", headers })
      const timer = setTimeout(() => out.destroy(), 5000)
      out.on("response", (answer) => {
        const parts = []
        answer.on("data", (d) => parts.push(d))
        answer.on("end", () => {
          clearTimeout(timer)
          const decision = JSON.parse(Buffer.concat(parts).toString())
          res.setHeader("content-type", "application/json")
          res.end(JSON.stringify({ decision, steps: [{ component: "backend", outcome: decision.decision, duration_ms: 0 }] }))
        })
      })
      out.end(body)
    })
  }).listen(0, "127.0.0.1", function() {
    process.send(this.address().port)
  })
  process.on("message", (m) => m === "cpu" && process.send(process.cpuUsage()))
} else {
  const { intFlag, exitWithUsageIfAsked } = parseArgs("bench/host-floor")
  exitWithUsageIfAsked("usage: node bench/host-floor.mjs [--requests 10000] [--concurrency 16]\n")
  const requests = intFlag("requests", 10_000)
  const concurrency = intFlag("concurrency", 16)
  const start = async (args) => {
    const child = fork(process.argv[1], args)
    return { child, port: await new Promise((resolve) => child.once("message", resolve)) }
  }
  const backend = await start(["backend"])
  const proxy = await start(["proxy", String(backend.port)])
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
    const body = JSON.stringify({ id: "floor", hook: "bench", subject: "bench", payload: { n: 1, text: "hello" } })
    const one = () =>
      new Promise((resolve, reject) => {
        const req = http.request({ agent, host: "127.0.0.1", port: proxy.port, method: "POST", path: "/v1/hooks/bench/invoke" }, (res) => {
          res.resume()
          res.on("end", resolve)
        })
        req.on("error", reject)
        req.end(body)
      })
    const run = async (n) => {
      let next = 0
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next++ < n) await one()
      }))
    }
    const cpu = () => new Promise((resolve) => (proxy.child.once("message", resolve), proxy.child.send("cpu")))
    await run(Math.min(2_000, requests))
    const before = await cpu()
    const t0 = performance.now()
    await run(requests)
    const after = await cpu()
    const us = (after.user + after.system - before.user - before.system) / requests
    console.log(`bare node:http proxy: ${us.toFixed(1)} µs CPU per request, ${(requests / ((performance.now() - t0) / 1000)).toFixed(0)} req/s (concurrency ${concurrency})`)
  } finally {
    backend.child.kill("SIGKILL")
    proxy.child.kill("SIGKILL")
  }
}
