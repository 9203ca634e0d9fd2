// A small client of the host's control API for the fault campaign and the soak: every call has a
// deadline and settles to `{ status, json, text, ms }` or `{ error, ms }`; it never throws, so a load
// loop can count outcomes instead of crashing on the first refused connection.
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"

/** One HTTP exchange against `url` (an http://127.0.0.1:port base) that settles within `timeoutMs`. */
export const exchange = ({ url, method = "GET", pathname, headers = {}, body, timeoutMs = 10_000, agent = false }) =>
  new Promise((resolve) => {
    const t0 = performance.now()
    const ms = () => performance.now() - t0
    let settled = false
    const settle = (value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ ...value, ms: ms() })
    }
    const payload = body === undefined ? undefined : Buffer.from(typeof body === "string" ? body : JSON.stringify(body))
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: Number(url.port),
        method,
        path: pathname,
        headers: { ...headers, ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": payload.length }) }
      },
      (res) => {
        const chunks = []
        res.on("data", (c) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          settle({ status: res.statusCode, json, text })
        })
        res.on("error", (error) => settle({ error: error.code ?? error.message }))
      }
    )
    // A timer instead of req.setTimeout: that one measures idle time, this one the whole exchange.
    const timer = setTimeout(() => {
      settle({ error: "client_timeout" })
      req.destroy()
    }, timeoutMs)
    req.on("error", (error) => settle({ error: error.code ?? error.message }))
    req.end(payload)
  })

/** The control API of the host on `dataDir` (reads run/control.json and run/control.token). */
export const controlOf = (dataDir) => {
  const url = new URL(JSON.parse(fs.readFileSync(path.join(dataDir, "run", "control.json"), "utf8")).url)
  const token = fs.readFileSync(path.join(dataDir, "run", "control.token"), "utf8").trim()
  const auth = { authorization: `Bearer ${token}` }
  const call = (method, pathname, body, timeoutMs) => exchange({ url, method, pathname, headers: auth, body, timeoutMs })
  return {
    url,
    token,
    /** GET with the token. */
    get: (pathname, timeoutMs = 5_000) => call("GET", pathname, undefined, timeoutMs),
    /** POST with the token and a JSON body. */
    post: (pathname, body, timeoutMs = 10_000) => call("POST", pathname, body, timeoutMs),
    /** GET /v1/components: the components array, or undefined when the call failed. */
    components: async (timeoutMs = 5_000) => {
      const r = await call("GET", "/v1/components", undefined, timeoutMs)
      return r.status === 200 && Array.isArray(r.json?.components) ? { components: r.json.components, ms: r.ms } : { error: r.error ?? r.status, ms: r.ms }
    },
    /** POST /v1/hooks/{hook}/invoke with `envelope`. */
    invoke: (hook, envelope, timeoutMs = 15_000) => call("POST", `/v1/hooks/${hook}/invoke`, envelope, timeoutMs)
  }
}
