/**
 * The operator's CLI end to end: the built `corral` against a real host on a temp data dir, as a person
 * at a terminal (or a script piping it) sees it: tables, `--json`, exit codes, one-line errors.
 */
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeEchoServices } from "../support/brokerFixture.js"
import { control, fixturesDir, killPid, makeDataDir, removeDataDirs, startHost } from "../support/hostProcess.js"

const corralScript = Path.resolve(import.meta.dirname, "../../dist/bin/corral.js")
const ansi = /\u001b\[/

interface Run {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the built CLI to its end (≤ 40 s), piped: stdout is not a terminal. */
const corral = (args: ReadonlyArray<string>, options: { readonly input?: string; readonly env?: Readonly<Record<string, string>> } = {}): Run => {
  const result = spawnSync(process.execPath, [corralScript, ...args], {
    encoding: "utf8",
    timeout: 40_000,
    input: options.input ?? "",
    env: { ...process.env, NO_COLOR: "", ...options.env }
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

interface ComponentsBody {
  readonly components: ReadonlyArray<{ readonly id: string; readonly phase: string; readonly pid: number | null }>
}

afterAll(removeDataDirs)

describe("corral operator commands against a running host", () => {
  it.scopedLive("status (table and --json), logs, trace, restart --wait, stop of an unknown id, invoke", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir({
        "50-stuck.json": {
          components: {
            "stuck.module": {
              kind: "http_local_json",
              launch: { executable: "python3", args: [Path.join(fixturesDir, "never_ready.py")] },
              http: { port: "auto", startup_timeout_ms: 1_000 },
              restart_policy: { mode: "never" }
            }
          }
        }
      })
      const host = yield* startHost(dataDir)
      const at = ["--data-dir", dataDir]

      const table = corral(["status", ...at])
      expect(table.status).toBe(0)
      expect(table.stdout).not.toMatch(ansi)
      const rows = table.stdout.trimEnd().split("\n")
      expect(rows[0]).toMatch(/^ID\s+KIND\s+PHASE\s+PID\s+UPTIME\s+RESTARTS used\/left\s+LAST ERROR$/)
      const listed = (yield* Effect.promise(() => control(host, "GET", "/v1/components"))).body as ComponentsBody
      for (const component of listed.components) {
        const row = rows.find((line) => line.startsWith(`${component.id} `))
        expect(row, `a row for ${component.id}`).toBeDefined()
        expect(row).toContain(` ${component.phase} `)
        if (component.pid !== null) expect(row).toContain(` ${component.pid} `)
      }
      expect(rows.find((line) => line.startsWith("stuck.module "))).toMatch(/ failed .*not ready within startup_timeout_ms/)
      // A narrow terminal: the last error is cut to fit, never wrapped.
      const narrow = corral(["status", ...at], { env: { COLUMNS: "90" } })
      expect(Math.max(...narrow.stdout.trimEnd().split("\n").map((line) => line.length))).toBeLessThanOrEqual(90)
      expect(narrow.stdout).toContain("…")

      const json = corral(["status", "--json", ...at])
      expect(json.status).toBe(0)
      const body = JSON.parse(json.stdout) as ComponentsBody & { readonly components: ReadonlyArray<Record<string, unknown>> }
      expect(Object.keys(body)).toEqual(["components"])
      expect(body.components.map((c) => [c.id, c.phase, c.pid])).toEqual(listed.components.map((c) => [c.id, c.phase, c.pid]))
      expect(Object.keys(body.components[0] ?? {})).toEqual(Object.keys((listed.components[0] ?? {}) as object))

      const logFile = Path.join(dataDir, "logs", "middleware.dator.log")
      const logs = corral(["logs", "middleware.dator", "-n", "2", ...at])
      expect(logs.status).toBe(0)
      expect(logs.stdout).toBe(`${Fs.readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-2).join("\n")}\n`)

      const trace = corral(["trace", "lifecycle", "--component", "middleware.dator", ...at])
      expect(trace.status).toBe(0)
      expect(trace.stdout).toContain("middleware.dator  configured → starting")
      expect(trace.stdout).not.toContain("middleware.arca")
      const traceJson = corral(["trace", "lifecycle", "--json", "--since", "1h", ...at]).stdout.trimEnd().split("\n")
      expect(traceJson.map((line) => (JSON.parse(line) as { component: string }).component)).toContain("middleware.arca")

      const before = listed.components.find((c) => c.id === "middleware.dator")?.pid
      const restarted = corral(["restart", "middleware.dator", "--wait", "--timeout", "20", ...at])
      expect(restarted.stderr).toBe("")
      expect(restarted.status).toBe(0)
      const after = ((yield* Effect.promise(() => control(host, "GET", "/v1/components/middleware.dator"))).body as { phase: string; pid: number }).pid
      expect(after).not.toBe(before)
      expect(restarted.stdout).toBe(`middleware.dator: ready (pid ${after})\n`)

      const stuck = corral(["restart", "stuck.module", "--wait", "--timeout", "20", ...at])
      expect(stuck.status).toBe(1)
      expect(stuck.stderr).toMatch(/^corral: stuck\.module did not reach ready within 20 s; it is failed: .*not ready within startup_timeout_ms/)
      expect(stuck.stderr.trimEnd().split("\n")).toHaveLength(1)

      const unknown = corral(["stop", "nope", "--wait", ...at])
      expect(unknown.status).toBe(1)
      expect(unknown.stderr).toMatch(/^corral: POST \/v1\/components\/nope\/stop\?wait=1&timeout_ms=30000 answered 404/)
      expect(unknown.stderr).not.toMatch(/fiber=|cause=|at /)

      const invoked = corral(["invoke", "ingress", '{"subject": "alice", "payload": {"text": "hello"}}', ...at])
      expect(invoked.status).toBe(0)
      expect(invoked.stdout).toMatch(/^ingress: allow\n  middleware\.dator\s+allow\s+[\d.]+ ms\n  middleware\.arca\s+allow\s+[\d.]+ ms\n$/)
      const fromStdin = corral(["invoke", "ingress", "-", "--json", ...at], { input: '{"id": "from-stdin", "subject": "bob", "payload": {}}' })
      expect(fromStdin.status).toBe(0)
      expect((JSON.parse(fromStdin.stdout) as { decision: { decision: string } }).decision.decision).toBe("allow")
      const envelopeFile = Path.join(dataDir, "envelope.json")
      Fs.writeFileSync(envelopeFile, '{"id": "from-file", "subject": "carol", "payload": {}}')
      expect(corral(["invoke", "ingress", "--envelope", envelopeFile, ...at]).status).toBe(0)
      const invocations = Fs.readFileSync(Path.join(dataDir, "trace", "invocation.jsonl"), "utf8")
      expect(invocations).toContain('"envelope_id":"from-stdin"')
      expect(invocations).toContain('"envelope_id":"from-file"')
    }))

  it.scopedLive("events follows a module killed behind the host's back until it is ready again", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir()
      const host = yield* startHost(dataDir)
      const dator = host.up.components.find((c) => c.id === "middleware.dator")
      const events = yield* Effect.acquireRelease(
        Effect.sync(() => spawn(process.execPath, [corralScript, "events", "--json", "--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] })),
        (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGTERM"))
      )
      const lines: Array<string> = []
      Readline.createInterface({ input: events.stdout }).on("line", (line) => lines.push(line))
      let stderr = ""
      events.stderr.setEncoding("utf8")
      events.stderr.on("data", (chunk: string) => {
        stderr += chunk
      })
      yield* Effect.promise(() => waitFor(() => stderr.includes("following the events"), 15_000, () => `events never connected: ${stderr}`))
      killPid(dator?.pid)
      type Numbered = { readonly id: number; readonly event: { readonly _tag: string; readonly component?: string; readonly to?: string; readonly pid?: number | null } }
      const datorPhases = () =>
        lines.map((line) => JSON.parse(line) as Numbered).filter((n) => n.event._tag === "lifecycle" && n.event.component === "middleware.dator")
      yield* Effect.promise(() =>
        waitFor(() => datorPhases().some((n) => n.event.to === "ready" && n.event.pid !== dator?.pid), 20_000, () => `no ready again in:\n${lines.join("\n")}`)
      )
      const seen = datorPhases()
      expect(seen.map((n) => n.event.to)).toContain("starting")
      expect(seen.map((n) => n.id)).toEqual([...seen.map((n) => n.id)].sort((a, b) => a - b))
      expect(stderr).not.toMatch(/fiber=|cause=/)
    }))

  it.scopedLive("broker hello --version asks the broker for that version (the CLI's own --version stays top-level)", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir()
      makeEchoServices(dataDir).define("web", { version_allow_list: ["1.0.0", "2.0.0"] })
      yield* startHost(dataDir)
      const hello = corral(["broker", "hello", "web", "--version", "2.0.0", "--data-dir", dataDir])
      expect(hello.stderr).toBe("")
      expect(hello.status).toBe(0)
      expect(JSON.parse(hello.stdout)).toMatchObject({ type: "hello.ok", version: "2.0.0" })
      const blocked = corral(["broker", "hello", "web", "--version=3.0.0", "--data-dir", dataDir])
      expect(blocked.status).toBe(1)
      expect(blocked.stderr).toContain("3.0.0")
      expect(corral(["--version"]).stdout.trim()).toBe("0.1.0")
    }))
})

describe("corral without a host, and its conventions", () => {
  it("says in one line that no host runs in the data dir and how to start one (exit 1)", () => {
    const dataDir = makeDataDir()
    for (const command of [["status"], ["events"], ["reload"]]) {
      const run = corral([...command, "--data-dir", dataDir])
      expect(run.status, command.join(" ")).toBe(1)
      expect(run.stderr).toBe(`corral: no host is running in ${dataDir} (no run/control.json); start one with: corral up --data-dir ${dataDir}\n`)
    }
    // A control file left by a host that was SIGKILLed names a pid that is gone.
    Fs.mkdirSync(Path.join(dataDir, "run"))
    Fs.writeFileSync(Path.join(dataDir, "run", "control.json"), JSON.stringify({ url: "http://127.0.0.1:9", pid: 2 ** 22 + 1 }))
    const stale = corral(["status", "--data-dir", dataDir])
    expect(stale.status).toBe(1)
    expect(stale.stderr).toMatch(/^corral: no host is running in .* \(run\/control\.json names pid \d+, which has exited\); start one with: corral up --data-dir /)
  })

  it("a usage error is one line saying what is wrong and what to type, exit code 2", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["logs"], /^corral: Missing argument <id> \(see 'corral logs --help'\)\n$/],
      [["stauts"], /^corral: 'stauts' is not a command of corral; did you mean 'status'\? \(commands: .*\) \(see 'corral --help'\)\n$/],
      [["restart", "x", "--timeout", "999"], /^corral: --timeout must be between 1 and 300, got 999 \(see 'corral restart --help'\)\n$/],
      [["trace", "lifecycle", "--since", "soon"], /^corral: --since takes a duration like 90s, 15m, 1h30m or 2d, or an ISO 8601 time like .*; got 'soon' \(see 'corral trace --help'\)\n$/],
      [["invoke", "ingress", "{}", "--envelope", corralScript], /^corral: give the envelope once: .*\n$/]
    ]
    for (const [args, expected] of cases) {
      const run = corral(args)
      expect(run.status, args.join(" ")).toBe(2)
      expect(run.stderr).toMatch(expected)
      expect(run.stdout).toBe("")
    }
  })

  it("prints no ANSI colour when stdout is not a terminal or NO_COLOR is set, help included", () => {
    const piped = corral(["--help"])
    expect(piped.status).toBe(0)
    expect(piped.stdout).toContain("USAGE")
    expect(piped.stdout).not.toMatch(ansi)
    expect(corral(["config", "--help"]).stdout).not.toMatch(ansi)
    // Under a pseudo-terminal (util-linux `script`) help has colour, unless NO_COLOR says otherwise.
    const underTty = (env: Readonly<Record<string, string>>) =>
      spawnSync("script", ["-qec", `${process.execPath} ${corralScript} --help`, "/dev/null"], {
        encoding: "utf8",
        timeout: 40_000,
        env: { ...process.env, NO_COLOR: "", ...env }
      }).stdout
    expect(underTty({})).toMatch(ansi)
    expect(underTty({ NO_COLOR: "1" })).not.toMatch(ansi)
  })

  it("config check lists every problem at once, each with its file (exit 1)", () => {
    const dataDir = makeDataDir({
      "50-typo.json": { components: { "middleware.dator": { http: { reqest_timeout_ms: 10 } } } },
      "60-type.json": { components: { "middleware.arca": { stop_timeout_ms: "soon" } } }
    })
    const run = corral(["config", "check", "--data-dir", dataDir])
    expect(run.status).toBe(1)
    const problems = run.stderr.split("\n").filter((line) => line.startsWith("  "))
    expect(problems).toHaveLength(2)
    expect(problems[0]).toContain(`${Path.join(dataDir, "config", "50-typo.json")}: components["middleware.dator"].http.reqest_timeout_ms`)
    expect(problems[1]).toContain(`${Path.join(dataDir, "config", "60-type.json")}: components["middleware.arca"].stop_timeout_ms`)
    expect(run.stderr).not.toMatch(/fiber=|cause=/)
    const fine = corral(["config", "check", "--data-dir", makeDataDir()])
    expect(fine.status).toBe(0)
    expect(fine.stdout).toMatch(/^config OK/)
  })

  it("config show redacts secrets in the table and in --json; config schema is a JSON Schema", () => {
    const dataDir = makeDataDir({ "50-env.json": { components: { "middleware.dator": { launch: { env: { DATOR_API_KEY: "s3cret-value", DATOR_MODE: "strict" } } } } } })
    const table = corral(["config", "show", "--data-dir", dataDir])
    expect(table.status).toBe(0)
    expect(table.stdout).toMatch(/components\["middleware\.dator"\]\.launch\.env\.DATOR_MODE\s+config\/50-env\.json\s+"strict"/)
    expect(table.stdout).toMatch(/DATOR_API_KEY\s+config\/50-env\.json\s+"<redacted>"/)
    const json = corral(["config", "show", "--json", "--data-dir", dataDir])
    expect(json.status).toBe(0)
    expect(json.stdout).not.toContain("s3cret-value")
    expect(table.stdout).not.toContain("s3cret-value")
    const schema = JSON.parse(corral(["config", "schema"]).stdout) as { $schema: string; properties: Record<string, unknown> }
    expect(schema.$schema).toMatch(/json-schema\.org/)
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["host", "components", "hooks", "modules"]))
  })
})

/** Polls `condition` every 50 ms; rejects with `message()` after `timeoutMs`. */
const waitFor = async (condition: () => boolean, timeoutMs: number, message: () => string): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(message())
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
