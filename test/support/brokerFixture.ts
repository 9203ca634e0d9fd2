/**
 * Broker fixtures: a services dir with a private copy of the echo backend (`<dir>/echo_backend.py`,
 * so its processes can be found by command line) and service definitions written as an operator
 * would; a whole broker data dir around one; the process table and socket files they leave.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { parentOf, processesWhoseArgv } from "./procfs.js"

/** The real interpreter (not a pyenv shim), so a backend starts in ~100 ms. */
const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim()
const echoBackend = Fs.readFileSync(Path.resolve(import.meta.dirname, "../fixtures/echo_backend.py"), "utf8")

/** A services dir (mode 0700) and the echo backend its definitions launch. */
export interface EchoServices {
  readonly servicesDir: string
  /** The echo backend's executable copy: its processes' command lines name it. */
  readonly backend: string
  /** Writes (or rewrites, in place) `<name>.service.json`: defaults, then `fields`; `launch` fields merge into the echo backend's. */
  readonly define: (name: string, fields?: Readonly<Record<string, unknown>>) => void
  /** Live (non-zombie) processes running this echo backend. */
  readonly backendPids: () => ReadonlyArray<number>
}

/** A broker data directory of one test. */
export interface BrokerDataDir extends EchoServices {
  readonly dir: string
  readonly runDir: string
  /** `<dir>/run/broker.sock`. */
  readonly socketPath: string
  /** Backend socket files left in `run/backends/`. */
  readonly backendSockets: () => ReadonlyArray<string>
}

/**
 * Live processes whose command line contains `needle` as one argument, one per launched child: the
 * launcher's wrappers (`unshare`, the PID namespace's init) carry the command's argv too, so only the
 * topmost of a chain counts — the pid the launcher reports.
 */
export const pidsRunning = (needle: string): ReadonlyArray<number> => {
  const matching = processesWhoseArgv((argv) => argv.includes(needle))
  const matched = new Set(matching)
  return matching.filter((pid) => !matched.has(parentOf(pid) ?? -1)).sort((a, b) => a - b)
}

/** Backend socket files (`*.sock`) in `<runDir>/backends/`. */
export const backendSocketsIn = (runDir: string): ReadonlyArray<string> => {
  try {
    return Fs.readdirSync(Path.join(runDir, "backends")).filter((name) => name.endsWith(".sock"))
  } catch {
    return []
  }
}

/**
 * Creates `<dir>/services` (mode 0700: the broker refuses one writable by group or others) and
 * `<dir>/echo_backend.py`, an executable copy of the echo backend on `interpreter` (default: the real
 * one; a backend run as another user needs one that user can run, such as `/usr/bin/python3`).
 */
export const makeEchoServices = (dir: string, interpreter: string = python): EchoServices => {
  const servicesDir = Path.join(dir, "services")
  Fs.mkdirSync(servicesDir, { recursive: true, mode: 0o700 })
  Fs.chmodSync(servicesDir, 0o700)
  const backend = Path.join(dir, "echo_backend.py")
  Fs.writeFileSync(backend, `#!${interpreter}\n${echoBackend}`, { mode: 0o755 })
  const define = (name: string, fields: Readonly<Record<string, unknown>> = {}) => {
    const { launch, ...rest } = fields
    const definition = {
      name,
      default_version: "1.0.0",
      endpoint: { kind: "unix" },
      ready_timeout_ms: 5_000,
      ...rest,
      launch: { executable: backend, ...(typeof launch === "object" && launch !== null ? launch : {}) }
    }
    Fs.writeFileSync(Path.join(servicesDir, `${name}.service.json`), JSON.stringify(definition), { mode: 0o600 })
  }
  return { servicesDir, backend, define, backendPids: () => pidsRunning(backend) }
}

/**
 * A fresh data dir under a short temp path (Unix socket paths stay under 108 bytes). The scope's
 * end removes it; register it before the broker, so the broker has drained by then.
 */
export const makeBrokerDataDir: Effect.Effect<BrokerDataDir, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync((): BrokerDataDir => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cbk-"))
    const runDir = Path.join(dir, "run")
    return {
      ...makeEchoServices(dir),
      dir,
      runDir,
      socketPath: Path.join(runDir, "broker.sock"),
      backendSockets: () => backendSocketsIn(runDir)
    }
  }),
  ({ dir }) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)
