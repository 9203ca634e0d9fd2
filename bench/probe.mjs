// A light second client for the overload scenario: a few keep-alive connections over raw sockets,
// each sending one request at a time (closed loop) while wrk loads the server, recording each
// response's latency by status. wrk's own histogram cannot be split by status, so 503 latency is
// measured here. The first response on each warm connection is left out of by_status (it includes
// the TCP accept); a separate loop opens a fresh connection every --fresh-interval-ms, sends one
// request and records connect-to-response latency (fresh_by_status): the wait a NEW client sees.
// Usage:
//   node bench/probe.mjs --url http://127.0.0.1:PORT --path /sleep?ms=50 --connections 4 --duration-ms 5000 [--fresh-interval-ms 100]
// Prints one JSON line: {"by_status":{"503":{"count","p50_us","p99_us","max_us"},...},"fresh_by_status":{...},"errors":N,...}
import * as net from "node:net"

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i !== -1 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback
}

const url = new URL(arg("url", "http://127.0.0.1:8080"))
const path = arg("path", "/hello")
const connections = Number(arg("connections", "4"))
const durationMs = Number(arg("duration-ms", "5000"))
const freshIntervalMs = Number(arg("fresh-interval-ms", "100"))
const requestBytes = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`, "latin1")

const samples = new Map() // status -> number[] (microseconds), warm connections
const freshSamples = new Map() // status -> number[], fresh connections (connect to response)
let errors = 0
let freshErrors = 0
let reconnects = 0
const deadline = Date.now() + durationMs

const record = (status, us, into = samples) => {
  let list = into.get(status)
  if (list === undefined) into.set(status, (list = []))
  list.push(us)
}

const headerEnd = Buffer.from("\r\n\r\n")

/** One connection's closed loop; resolves at the deadline. */
const loop = () =>
  new Promise((resolve) => {
    let socket
    let buffer = Buffer.alloc(0)
    let sentAt = 0n
    let finished = false
    let first = true

    const finish = () => {
      if (finished) return
      finished = true
      socket?.destroy()
      resolve()
    }

    const send = () => {
      if (Date.now() >= deadline) return finish()
      sentAt = process.hrtime.bigint()
      socket.write(requestBytes)
    }

    const connect = () => {
      buffer = Buffer.alloc(0)
      first = true
      socket = net.connect({ host: url.hostname, port: Number(url.port), noDelay: true })
      socket.on("connect", send)
      socket.on("data", (chunk) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
        for (;;) {
          const end = buffer.indexOf(headerEnd)
          if (end === -1) return
          const head = buffer.subarray(0, end).toString("latin1")
          const status = Number(head.slice(9, 12))
          const match = /\r\ncontent-length:\s*(\d+)/i.exec(head)
          const length = match === null ? 0 : Number(match[1])
          if (buffer.length < end + 4 + length) return
          const us = Number(process.hrtime.bigint() - sentAt) / 1000
          if (!first) record(status, us)
          first = false
          buffer = buffer.subarray(end + 4 + length)
          if (/\r\nconnection:\s*close/i.test(head)) {
            socket.removeAllListeners()
            socket.destroy()
            reconnects++
            return Date.now() >= deadline ? finish() : connect()
          }
          send()
        }
      })
      socket.on("error", () => {
        errors++
      })
      socket.on("close", () => {
        if (finished) return
        if (Date.now() >= deadline) return finish()
        reconnects++
        setTimeout(connect, 10)
      })
    }
    connect()
    setTimeout(finish, durationMs + 3000).unref()
  })

/** Fresh connections, one at a time: connect, one request, response, close; every freshIntervalMs. */
const freshLoop = async () => {
  if (!(freshIntervalMs > 0)) return
  while (Date.now() + freshIntervalMs < deadline) {
    const t = Date.now()
    await new Promise((resolve) => {
      const startedAt = process.hrtime.bigint()
      let buffer = Buffer.alloc(0)
      const socket = net.connect({ host: url.hostname, port: Number(url.port), noDelay: true })
      let settled = false
      const done = () => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        socket.destroy()
        resolve()
      }
      const timer = setTimeout(() => {
        record("no response in 5 s", 5e6, freshSamples)
        done()
      }, 5000)
      socket.on("connect", () => socket.write(requestBytes))
      socket.on("data", (chunk) => {
        buffer = Buffer.concat([buffer, chunk])
        const end = buffer.indexOf(headerEnd)
        if (end === -1) return
        const head = buffer.subarray(0, end).toString("latin1")
        const match = /\r\ncontent-length:\s*(\d+)/i.exec(head)
        if (buffer.length < end + 4 + (match === null ? 0 : Number(match[1]))) return
        record(Number(head.slice(9, 12)), Number(process.hrtime.bigint() - startedAt) / 1000, freshSamples)
        done()
      })
      socket.on("error", () => {
        freshErrors++
        done()
      })
      socket.on("close", () => {
        if (!settled) record("closed without response", Number(process.hrtime.bigint() - startedAt) / 1000, freshSamples)
        done()
      })
    })
    const wait = freshIntervalMs - (Date.now() - t)
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
}

const pct = (sorted, p) => sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

await Promise.all([...Array.from({ length: connections }, loop), freshLoop()])

const summarize = (map) => {
  const out = {}
  for (const [status, list] of map) {
    list.sort((a, b) => a - b)
    out[status] = {
      count: list.length,
      p50_us: Math.round(pct(list, 50)),
      p99_us: Math.round(pct(list, 99)),
      max_us: Math.round(list[list.length - 1])
    }
  }
  return out
}
process.stdout.write(
  JSON.stringify({
    path,
    connections,
    duration_ms: durationMs,
    by_status: summarize(samples),
    fresh_interval_ms: freshIntervalMs,
    fresh_by_status: summarize(freshSamples),
    errors,
    fresh_errors: freshErrors,
    cpu_s: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    reconnects
  }) + "\n"
)
process.exit(0)
