// The host the fault campaign and the soak run against: a fresh temp data dir with an operator
// fragment (the bundled Dator and Arca, Dator's quota lifted, and optionally the misbehaving
// `bench.chaos` module on hook `chaos`), a broker definition of the echo backend (`echo`), and
// `corral up` started detached (its own session), tracked and stopped by its pid.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { startCorralHost } from "./corralHost.mjs"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
/** The misbehaving module (bench/fixtures/chaos_module.py). */
export const chaosModule = path.join(root, "bench/fixtures/chaos_module.py")
const echoBackend = path.join(root, "test/fixtures/echo_backend.py")

/** The chaos component's request timeout: a stalled invocation must be answered soon after it. */
export const CHAOS_REQUEST_TIMEOUT_MS = 1_000

/** The operator fragment: Dator's quota out of the way, and the chaos module when `chaos`. */
const fragment = (chaos) => ({
  modules: { dator: { quota: { per_subject: 100_000_000, window_sec: 60 } } },
  ...(chaos
    ? {
        components: {
          "bench.chaos": {
            kind: "http_local_json",
            launch: { executable: "python3", args: [chaosModule], env: {} },
            http: { port: "auto", startup_timeout_ms: 10_000, request_timeout_ms: CHAOS_REQUEST_TIMEOUT_MS },
            sandbox_profile: "module-restricted",
            restart_policy: { mode: "on_failure", max_restarts: 3, window_sec: 60 },
            stop_timeout_ms: 2_000
          }
        },
        hooks: { chaos: ["bench.chaos"] }
      }
    : {})
})

/**
 * Makes `<tempDir>/d` (config/50-bench.json, services/echo.service.json with the echo backend on a
 * unix socket, `idle_exit_sec` so the broker retires and relaunches it) and returns its path.
 */
export const prepareDataDir = (tempDir, { chaos }) => {
  const python = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).stdout.trim()
  if (!python.startsWith("/")) throw new Error("cannot resolve python3 to an absolute interpreter path (the broker launches absolute executables)")
  const dataDir = path.join(tempDir, "d")
  fs.mkdirSync(path.join(dataDir, "config"), { recursive: true })
  fs.writeFileSync(path.join(dataDir, "config", "50-bench.json"), `${JSON.stringify(fragment(chaos), null, 2)}\n`)
  const services = path.join(dataDir, "services")
  fs.mkdirSync(services, { mode: 0o700 })
  fs.chmodSync(services, 0o700)
  const definition = { name: "echo", default_version: "1.0.0", launch: { executable: python, args: [echoBackend] }, endpoint: { kind: "unix" }, ready_timeout_ms: 10_000, idle_exit_sec: 5 }
  const file = path.join(services, "echo.service.json")
  fs.writeFileSync(file, `${JSON.stringify(definition, null, 2)}\n`, { mode: 0o600 })
  fs.chmodSync(file, 0o600)
  return dataDir
}

/** A fresh temp dir for one run (removed by the caller's cleanup). */
export const makeTempDir = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** Starts the host on `dataDir`, detached; resolves `{ proc, up, stderr, brokerSocket, dbPath }`. */
export const startCampaignHost = async (dataDir) => {
  const host = await startCorralHost({ dataDir, commandPrefix: [], detached: true })
  const notReady = host.up.components.filter((c) => c.phase !== "ready")
  if (notReady.length > 0) throw new Error(`components not ready at start: ${JSON.stringify(notReady)}`)
  return {
    ...host,
    brokerSocket: path.join(dataDir, "run", "broker.sock"),
    // Arca's default db_path ($CORRAL_DATA_DIR/arca/…) under the restricted profile's work dir.
    dbPath: path.join(dataDir, "work", "middleware.arca", "arca", "arca.sqlite3")
  }
}
