/**
 * A raw HTTP/1.1 client over `node:net` that writes exact bytes and reads exact bytes: what a
 * server answers before parsing, and whether it closed the connection, are visible to tests.
 */
import * as Net from "node:net"
import * as Http from "node:http"

/** A parsed response, plus the raw bytes and whether the server closed the socket. */
export interface RawResponse {
  readonly raw: string
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** Connects to 127.0.0.1:port (or a Unix socket path). */
export const connect = (target: number | string): Promise<Net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = typeof target === "number" ? Net.connect({ host: "127.0.0.1", port: target }) : Net.connect({ path: target })
    socket.once("connect", () => resolve(socket))
    socket.once("error", reject)
  })

/** Everything the peer sends until it closes the connection, within `timeoutMs`. */
export const readUntilClose = (socket: Net.Socket, timeoutMs = 5_000): Promise<{ data: string; closed: boolean; elapsedMs: number }> =>
  new Promise((resolve) => {
    const started = Date.now()
    let data = ""
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      data += chunk
    })
    socket.on("error", () => {})
    const timer = setTimeout(() => {
      resolve({ data, closed: false, elapsedMs: Date.now() - started })
    }, timeoutMs)
    socket.once("close", () => {
      clearTimeout(timer)
      resolve({ data, closed: true, elapsedMs: Date.now() - started })
    })
  })

/** Parses one complete response from `raw`. */
export const parseResponse = (raw: string): RawResponse => {
  const headerEnd = raw.indexOf("\r\n\r\n")
  if (headerEnd === -1) throw new Error(`incomplete response: ${JSON.stringify(raw)}`)
  const [statusLine = "", ...lines] = raw.slice(0, headerEnd).split("\r\n")
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(":")
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { raw, status: Number(statusLine.split(" ")[1]), headers, body: raw.slice(headerEnd + 4) }
}

/** One request through a fresh connection with `Connection: close`; resolves when the server closes. */
export const request = async (
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}
): Promise<RawResponse> => {
  const socket = await connect(port)
  const body = options.body ?? ""
  const headers = { host: "127.0.0.1", connection: "close", ...(body.length > 0 ? { "content-length": String(Buffer.byteLength(body)) } : {}), ...options.headers }
  socket.write(
    `${options.method ?? "GET"} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body}`
  )
  const { data } = await readUntilClose(socket, options.timeoutMs ?? 10_000)
  return parseResponse(data)
}

/** A keep-alive agent for many requests over few connections. */
export const keepAliveAgent = (maxSockets: number) => new Http.Agent({ keepAlive: true, maxSockets })

/** A request through `node:http` (keep-alive via `agent`); the body is read whole. */
export const get = (
  port: number,
  path: string,
  agent?: Http.Agent
): Promise<{ status: number; headers: Http.IncomingHttpHeaders; body: string }> =>
  new Promise((resolve, reject) => {
    const req = Http.request({ host: "127.0.0.1", port, path, agent: agent ?? false }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        body += chunk
      })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

/** Waits (real time) until `condition` holds, polling every 5 ms, for at most `timeoutMs`. */
export const waitUntil = async (condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Writes a chunked body (64 KiB chunks, honouring backpressure) until the peer closes the connection
 * or `maxBytes` is written; resolves with the bytes written. A server that stops reading stalls it.
 */
export const streamChunkedBody = (socket: Net.Socket, maxBytes: number): Promise<number> =>
  new Promise((resolve) => {
    const chunk = Buffer.from(`10000\r\n${"b".repeat(0x10000)}\r\n`, "latin1")
    let written = 0
    let done = false
    const finish = () => {
      if (done) return
      done = true
      resolve(written)
    }
    const pump = () => {
      while (!done && written < maxBytes && !socket.destroyed) {
        written += 0x10000
        if (!socket.write(chunk)) return void socket.once("drain", pump)
      }
      if (written >= maxBytes) finish()
    }
    socket.once("close", finish)
    socket.on("error", finish)
    pump()
  })
