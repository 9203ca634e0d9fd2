import { spawn } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref, Schema, TestClock } from "effect"
import type { ComponentRoute } from "../../../../src/services/host/Component.js"
import { makeCommandStdioExecutor } from "../../../../src/layers/host/executors/CommandStdioExecutor.js"
import type { ExecutorComponent } from "../../../../src/layers/host/executors/ExecutorLimits.js"
import { makeExecutor } from "../../../../src/layers/host/executors/Executors.js"
import { makeLocalHttpExecutor, makeSupervisedHttpExecutor } from "../../../../src/layers/host/executors/HttpExecutors.js"
import { makeInProcessExecutor } from "../../../../src/layers/host/executors/InProcessExecutor.js"
import { makeModuleClient } from "../../../../src/layers/host/ModuleClient.js"
import { ComponentConfig } from "../../../../src/services/host/HostConfig.js"
import type { WorkflowEnvelope } from "../../../../src/services/host/MiddlewareContract.js"
import { LaunchError, ProcessLauncher, type RunResult } from "../../../../src/services/host/ProcessLauncher.js"
import { answerJson, answerText, refusedPort, startFakeModule, streamForever } from "../../../support/fakeModule.js"

const envelope: WorkflowEnvelope = { id: "env-1", hook: "ingress", subject: "user:42", payload: { text: "hello" } }

/** A component decoded from config the way the loader does it, with its id filled in. */
const component = (id: string, config: unknown): ExecutorComponent => ({ ...Schema.decodeUnknownSync(ComponentConfig)(config), id })

/**
 * A minimal real launcher for command_stdio tests: spawns the executable with exactly PATH plus
 * `spec.env`, writes stdin, collects stdout (capped) and a stderr tail, kills past the deadline.
 */
const FakeLauncher = Layer.succeed(ProcessLauncher, {
  isolation: "process-group-only",
  switchesUser: () => false,
  ownDirPath: (cwd) => cwd,
  launch: () => Effect.die(new Error("launch is not used by command_stdio")),
  run: (spec, stdin, limits) =>
    Effect.async<RunResult, LaunchError>((resume) => {
      const child = spawn(spec.executable, [...spec.args], {
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...spec.env },
        stdio: ["pipe", "pipe", "pipe"]
      })
      const stdout: Array<Buffer> = []
      let stdoutBytes = 0
      let stderr = ""
      let done = false
      const finish = (effect: Effect.Effect<RunResult, LaunchError>) => {
        if (done) return
        done = true
        clearTimeout(timer)
        resume(effect)
      }
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        finish(Effect.fail(new LaunchError({ name: spec.name, reason: "Timeout", message: `${spec.name}: killed after ${limits.timeoutMs} ms` })))
      }, limits.timeoutMs)
      child.on("error", (error) => finish(Effect.fail(new LaunchError({ name: spec.name, reason: "Spawn", message: error.message }))))
      child.stdout.on("data", (chunk: Buffer) => {
        stdoutBytes += chunk.length
        if (stdoutBytes > limits.maxStdoutBytes) {
          child.kill("SIGKILL")
          finish(Effect.fail(new LaunchError({ name: spec.name, reason: "OutputTooLarge", message: `${spec.name}: stdout over ${limits.maxStdoutBytes} bytes` })))
        } else stdout.push(chunk)
      })
      child.stderr.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString("utf8")).slice(-4_096)
      })
      child.on("close", (code, signal) =>
        finish(Effect.succeed({ exit: { code, signal }, stdout: Buffer.concat(stdout), stderrTail: stderr })))
      child.stdin.on("error", () => undefined)
      child.stdin.end(Buffer.from(stdin))
      return Effect.sync(() => {
        clearTimeout(timer)
        child.kill("SIGKILL")
      })
    })
})

const stdioComponent = (script: string, extra: Record<string, unknown> = {}) =>
  component("middleware.stdio", { kind: "command_stdio", launch: { executable: "/bin/sh", args: ["-c", script] }, ...extra })

const localComponent = (endpoint: string, http: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  component("middleware.local", { kind: "local_http_json", http: { endpoint, ...http }, ...extra })

describe("makeInProcessExecutor", () => {
  it.effect("returns the function's decision", () =>
    Effect.gen(function*() {
      const executor = yield* makeInProcessExecutor(
        "middleware.echo",
        (env) => Effect.succeed({ decision: "modify", payload: { echoed: env.payload } }),
        { timeoutMs: 1_000, maxConcurrency: 4 }
      )
      expect(executor.component).toBe("middleware.echo")
      expect(yield* executor.invoke(envelope)).toEqual({ decision: "modify", payload: { echoed: { text: "hello" } } })
    }))

  it.effect("turns a failure, a defect and a throw into Failed naming the component", () =>
    Effect.gen(function*() {
      const options = { timeoutMs: 1_000, maxConcurrency: 4 }
      const failing = yield* makeInProcessExecutor("m.fail", () => Effect.fail(new Error("no database")), options)
      const dying = yield* makeInProcessExecutor("m.die", () => Effect.die(new Error("bug")), options)
      const throwing = yield* makeInProcessExecutor("m.throw", () => {
        throw new Error("thrown")
      }, options)
      const failed = yield* Effect.flip(failing.invoke(envelope))
      expect(failed).toMatchObject({ _tag: "ExecutorError", component: "m.fail", reason: "Failed" })
      expect(failed.message).toBe("component m.fail: the function failed: no database")
      expect((yield* Effect.flip(dying.invoke(envelope))).message).toBe("component m.die: the function died: bug")
      expect((yield* Effect.flip(throwing.invoke(envelope))).message).toBe("component m.throw: the function died: thrown")
    }))

  it.effect("interrupts a function past timeoutMs and fails with Timeout", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const executor = yield* makeInProcessExecutor(
        "m.slow",
        () => Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true))),
        { timeoutMs: 500, maxConcurrency: 1 }
      )
      const fiber = yield* Effect.fork(executor.invoke(envelope))
      yield* TestClock.adjust("499 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toBe("component m.slow: no decision within 500 ms")
      expect(yield* Ref.get(interrupted)).toBe(true)
    }))

  it.effect("fails Busy at once when max_concurrency=1 and one call is in flight, then serves again", () =>
    Effect.gen(function*() {
      const executor = yield* makeInProcessExecutor(
        "m.one",
        () => Effect.as(Effect.sleep("100 millis"), { decision: "allow" }),
        { timeoutMs: 1_000, maxConcurrency: 1 }
      )
      const first = yield* Effect.fork(executor.invoke(envelope))
      yield* Effect.yieldNow()
      const busy = yield* Effect.flip(executor.invoke(envelope))
      expect(busy.reason).toBe("Busy")
      expect(busy.message).toContain("all 1 concurrency permits are held")
      yield* TestClock.adjust("100 millis")
      expect(yield* Fiber.join(first)).toEqual({ decision: "allow" })
      expect(yield* executor.invoke(envelope).pipe(Effect.fork, Effect.tap(() => TestClock.adjust("100 millis")), Effect.flatMap(Fiber.join)))
        .toEqual({ decision: "allow" })
    }))

  it.effect("fails InvalidDecision, never a pass, when the function answers something that is not a decision", () =>
    Effect.gen(function*() {
      const executor = yield* makeInProcessExecutor("m.bad", () => Effect.succeed({ decision: "maybe" }), {
        timeoutMs: 1_000,
        maxConcurrency: 1
      })
      const error = yield* Effect.flip(executor.invoke(envelope))
      expect(error.reason).toBe("InvalidDecision")
      expect(error.message).toBe(`component m.bad: invalid decision: decision: Expected "allow" | "deny" | "modify", actual "maybe"`)
    }))
})

describe("makeLocalHttpExecutor", () => {
  it.scopedLive("POSTs the envelope to invoke_path and returns the decision", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) =>
        answerJson(response, { decision: "allow", annotations: { "dator.score": 0.1 } }))
      const executor = yield* makeLocalHttpExecutor(localComponent(module.endpoint), yield* makeModuleClient())
      expect(yield* executor.invoke(envelope)).toEqual({ decision: "allow", annotations: { "dator.score": 0.1 } })
      expect(module.requests).toHaveLength(1)
      expect(module.requests[0]?.path).toBe("/v1/middleware/invoke")
      expect(JSON.parse(module.requests[0]?.body ?? "")).toEqual(envelope)
    }))

  const invalidAnswers: ReadonlyArray<readonly [string, string, string, string]> = [
    ["an unknown decision", `{"decision":"maybe"}`, "application/json", `invalid decision: decision: Expected "allow" | "deny" | "modify", actual "maybe"`],
    ["modify without payload", `{"decision":"modify"}`, "application/json", "invalid decision: a modify decision needs a payload"],
    ["deny without reason", `{"decision":"deny"}`, "application/json", "invalid decision: reason: is missing"],
    ["a JSON array", `[{"decision":"allow"}]`, "application/json", `invalid decision: expected a JSON object like {"decision":"allow"}, got an array`],
    ["a JSON string", `"allow"`, "application/json", "got a string"],
    ["an empty body", ``, "application/json", "got null"],
    ["an HTML page", `<!doctype html><html><body>It works!</body></html>`, "text/html", "answer is not JSON: <!doctype html><html><body>It works!"]
  ]
  for (const [what, body, contentType, expected] of invalidAnswers) {
    it.scopedLive(`fails InvalidDecision on ${what}`, () =>
      Effect.gen(function*() {
        const module = yield* startFakeModule((_request, response) => answerText(response, body, 200, contentType))
        const executor = yield* makeLocalHttpExecutor(localComponent(module.endpoint), yield* makeModuleClient())
        const error = yield* Effect.flip(executor.invoke(envelope))
        expect(error).toMatchObject({ _tag: "ExecutorError", component: "middleware.local", reason: "InvalidDecision" })
        expect(error.message).toMatch(/^component middleware\.local: /)
        expect(error.message).toContain(expected)
      }))
  }

  it.scopedLive("fails Timeout past request_timeout_ms", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => setTimeout(() => answerJson(response, { decision: "allow" }), 3_000))
      const executor = yield* makeLocalHttpExecutor(localComponent(module.endpoint, { request_timeout_ms: 200 }), yield* makeModuleClient())
      const started = Date.now()
      const error = yield* Effect.flip(executor.invoke(envelope))
      expect(error.reason).toBe("Timeout")
      expect(Date.now() - started).toBeLessThan(1_000)
    }))

  it.scopedLive("fails TooLarge past max_response_bytes", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => streamForever(response, 512))
      const executor = yield* makeLocalHttpExecutor(localComponent(module.endpoint, { max_response_bytes: 4_096 }), yield* makeModuleClient())
      const error = yield* Effect.flip(executor.invoke(envelope))
      expect(error.reason).toBe("TooLarge")
    }))

  it.scopedLive("fails Status on a non-2xx answer and Unreachable on a refused port", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => answerJson(response, { error: "boom" }, 500))
      const client = yield* makeModuleClient()
      const status = yield* Effect.flip((yield* makeLocalHttpExecutor(localComponent(module.endpoint), client)).invoke(envelope))
      expect(status.reason).toBe("Status")
      expect(status.message).toContain("500")
      const port = yield* refusedPort()
      const refused = yield* Effect.flip(
        (yield* makeLocalHttpExecutor(localComponent(`http://127.0.0.1:${port}`), client)).invoke(envelope)
      )
      expect(refused.reason).toBe("Unreachable")
    }))

  it.scopedLive("fails Busy well before the in-flight call finishes when max_concurrency=1", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => setTimeout(() => answerJson(response, { decision: "allow" }), 500))
      const executor = yield* makeLocalHttpExecutor(localComponent(module.endpoint, {}, { max_concurrency: 1 }), yield* makeModuleClient())
      const inFlight = yield* Effect.fork(executor.invoke(envelope))
      yield* Effect.sleep("50 millis")
      const started = Date.now()
      const busy = yield* Effect.flip(executor.invoke(envelope))
      expect(busy.reason).toBe("Busy")
      expect(Date.now() - started).toBeLessThan(50)
      expect(module.requests).toHaveLength(1)
      expect(yield* Fiber.join(inFlight)).toEqual({ decision: "allow" })
    }))

  it.effect("is a ConfigError without http.endpoint", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        makeLocalHttpExecutor(component("middleware.local", { kind: "local_http_json" }), {
          get: () => Effect.die("unused"),
          postJson: () => Effect.die("unused")
        })
      )
      expect(error.message).toContain("components.middleware.local.http.endpoint")
    }))
})

describe("makeSupervisedHttpExecutor", () => {
  const supervised = (http: Record<string, unknown> = {}) => component("middleware.dator", { kind: "http_local_json", http: { port: "auto", ...http } })

  it.scopedLive("fails NotReady with the phase and makes no network call outside ready/degraded", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => answerJson(response, { decision: "allow" }))
      const client = yield* makeModuleClient()
      for (const phase of ["configured", "starting", "stopping", "stopped", "failed"] as const) {
        const executor = yield* makeSupervisedHttpExecutor(supervised(), client, Effect.succeed({ phase, endpoint: module.endpoint, token: null }))
        const error = yield* Effect.flip(executor.invoke(envelope))
        expect(error).toMatchObject({ reason: "NotReady", phase, component: "middleware.dator" })
        expect(error.message).toContain(phase)
      }
      const noEndpoint = yield* makeSupervisedHttpExecutor(supervised(), client, Effect.succeed({ phase: "ready", endpoint: null, token: null }))
      expect(yield* Effect.flip(noEndpoint.invoke(envelope))).toMatchObject({ reason: "NotReady", phase: "ready" })
      expect(module.connections()).toBe(0)
      expect(module.requests).toHaveLength(0)
    }))

  it.scopedLive("routes to the endpoint it reads on every invocation, in ready and degraded", () =>
    Effect.gen(function*() {
      const a = yield* startFakeModule((_request, response) => answerJson(response, { decision: "allow", annotations: { by: "a" } }))
      const b = yield* startFakeModule((_request, response) => answerJson(response, { decision: "allow", annotations: { by: "b" } }))
      const route = yield* Ref.make<ComponentRoute>({ phase: "ready", endpoint: a.endpoint, token: null })
      const executor = yield* makeSupervisedHttpExecutor(
        supervised({ invoke_path: "/invoke" }),
        yield* makeModuleClient(),
        Ref.get(route)
      )
      expect(yield* executor.invoke(envelope)).toEqual({ decision: "allow", annotations: { by: "a" } })
      yield* Ref.set(route, { phase: "degraded", endpoint: b.endpoint, token: null })
      expect(yield* executor.invoke(envelope)).toEqual({ decision: "allow", annotations: { by: "b" } })
      expect(b.requests[0]?.path).toBe("/invoke")
    }))

  it.scopedLive("reports each invocation timeout through onTimeout, and nothing else", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((request, response) =>
        request.url === "/slow/invoke" ? undefined : answerText(response, "nope", 200))
      const timeouts = yield* Ref.make(0)
      const client = yield* makeModuleClient()
      const slow = yield* makeSupervisedHttpExecutor(
        supervised({ invoke_path: "/slow/invoke", request_timeout_ms: 100 }),
        client,
        Effect.succeed({ phase: "ready", endpoint: module.endpoint, token: null }),
        Ref.update(timeouts, (n) => n + 1)
      )
      const garbage = yield* makeSupervisedHttpExecutor(
        supervised(),
        client,
        Effect.succeed({ phase: "ready", endpoint: module.endpoint, token: null }),
        Ref.update(timeouts, (n) => n + 1)
      )
      expect((yield* Effect.flip(slow.invoke(envelope))).reason).toBe("Timeout")
      expect((yield* Effect.flip(slow.invoke(envelope))).reason).toBe("Timeout")
      expect((yield* Effect.flip(garbage.invoke(envelope))).reason).toBe("InvalidDecision")
      expect(yield* Ref.get(timeouts)).toBe(2)
    }))
})

describe("makeCommandStdioExecutor", () => {
  it.live("runs a python3 module with the envelope on stdin and returns its decision", () =>
    Effect.gen(function*() {
      const executor = yield* makeCommandStdioExecutor(
        component("middleware.py", {
          kind: "command_stdio",
          launch: {
            executable: "python3",
            args: [
              "-c",
              "import json,os,sys; e=json.load(sys.stdin); print(json.dumps({'decision':'modify','payload':{'seen':e['id'],'text':e['payload']['text'].upper()},'annotations':{'module':os.environ['CORRAL_MODULE_ID']}}))"
            ]
          }
        }),
        { env: { CORRAL_MODULE_ID: "py" } }
      )
      expect(yield* executor.invoke(envelope)).toEqual({
        decision: "modify",
        payload: { seen: "env-1", text: "HELLO" },
        annotations: { module: "py" }
      })
    }).pipe(Effect.provide(FakeLauncher)))

  it.live("replaces {component_id} in args and env, as a supervised launch does", () =>
    Effect.gen(function*() {
      const script = `cat >/dev/null; printf '{"decision":"allow","annotations":{"arg":"%s","env":"%s"}}' "$0" "$WHO"`
      const executor = yield* makeCommandStdioExecutor(
        stdioComponent(script, { launch: { executable: "/bin/sh", args: ["-c", script, "{component_id}"], env: { WHO: "id={component_id}" } } }),
        { env: {} }
      )
      expect(yield* executor.invoke(envelope)).toEqual({
        decision: "allow",
        annotations: { arg: "middleware.stdio", env: "id=middleware.stdio" }
      })
    }).pipe(Effect.provide(FakeLauncher)))

  it.live("passes launch.env and the host's env to the process, the host's winning", () =>
    Effect.gen(function*() {
      const script = `cat >/dev/null; printf '{"decision":"allow","annotations":{"a":"%s","b":"%s"}}' "$A" "$B"`
      const executor = yield* makeCommandStdioExecutor(
        stdioComponent(script, {
          launch: { executable: "/bin/sh", args: ["-c", script], env: { A: "from-config", B: "from-config" } }
        }),
        { env: { B: "from-host" } }
      )
      expect(yield* executor.invoke(envelope)).toEqual({ decision: "allow", annotations: { a: "from-config", b: "from-host" } })
    }).pipe(Effect.provide(FakeLauncher)))

  it.live("fails Crashed with the exit code and the stderr tail on a non-zero exit", () =>
    Effect.gen(function*() {
      const executor = yield* makeCommandStdioExecutor(stdioComponent(`cat >/dev/null; echo "model file missing" >&2; exit 3`), { env: {} })
      const error = yield* Effect.flip(executor.invoke(envelope))
      expect(error.reason).toBe("Crashed")
      expect(error.message).toBe("component middleware.stdio: the process exited with code 3; stderr: model file missing")
    }).pipe(Effect.provide(FakeLauncher)))

  it.live("fails Crashed naming the signal when the process is killed", () =>
    Effect.gen(function*() {
      const executor = yield* makeCommandStdioExecutor(stdioComponent(`kill -9 $$`), { env: {} })
      const error = yield* Effect.flip(executor.invoke(envelope))
      expect(error.reason).toBe("Crashed")
      expect(error.message).toContain("killed by SIGKILL")
    }).pipe(Effect.provide(FakeLauncher)))

  it.live("fails InvalidDecision on non-JSON or invalid stdout", () =>
    Effect.gen(function*() {
      const garbage = yield* makeCommandStdioExecutor(stdioComponent(`cat >/dev/null; echo "hello there"`), { env: {} })
      const garbageError = yield* Effect.flip(garbage.invoke(envelope))
      expect(garbageError.reason).toBe("InvalidDecision")
      expect(garbageError.message).toContain("stdout is not JSON: hello there")
      const denyWithoutReason = yield* makeCommandStdioExecutor(stdioComponent(`cat >/dev/null; echo '{"decision":"deny"}'`), { env: {} })
      expect((yield* Effect.flip(denyWithoutReason.invoke(envelope))).reason).toBe("InvalidDecision")
    }).pipe(Effect.provide(FakeLauncher)))

  it.live("maps the launcher's Timeout, OutputTooLarge and Spawn failures", () =>
    Effect.gen(function*() {
      const slow = yield* makeCommandStdioExecutor(stdioComponent(`sleep 5`, { http: { request_timeout_ms: 200 } }), { env: {} })
      expect((yield* Effect.flip(slow.invoke(envelope))).reason).toBe("Timeout")
      const chatty = yield* makeCommandStdioExecutor(stdioComponent(`cat >/dev/null; yes`, { http: { max_response_bytes: 1_024 } }), { env: {} })
      expect((yield* Effect.flip(chatty.invoke(envelope))).reason).toBe("TooLarge")
      const missing = yield* makeCommandStdioExecutor(
        component("middleware.gone", { kind: "command_stdio", launch: { executable: "/nonexistent/module" } }),
        { env: {} }
      )
      const spawnError = yield* Effect.flip(missing.invoke(envelope))
      expect(spawnError.reason).toBe("Crashed")
      expect(spawnError.message).toContain("could not start")
    }).pipe(Effect.provide(FakeLauncher)))
})

describe("makeExecutor", () => {
  it.scopedLive("builds the executor of each kind and rejects an unregistered in_process function", () =>
    Effect.gen(function*() {
      const module = yield* startFakeModule((_request, response) => answerJson(response, { decision: "allow", annotations: { by: "http" } }))
      const deps = {
        client: yield* makeModuleClient(),
        inProcess: new Map([["echo", () => Effect.succeed({ decision: "allow", annotations: { by: "fn" } })]]),
        route: () => Effect.succeed({ phase: "ready" as const, endpoint: module.endpoint, token: null }),
        env: () => ({})
      }
      const inProcess = yield* makeExecutor(component("a", { kind: "in_process", function: "echo" }), deps)
      expect(yield* inProcess.invoke(envelope)).toEqual({ decision: "allow", annotations: { by: "fn" } })
      const local = yield* makeExecutor(component("b", { kind: "local_http_json", http: { endpoint: module.endpoint, token: null } }), deps)
      expect(yield* local.invoke(envelope)).toEqual({ decision: "allow", annotations: { by: "http" } })
      const supervisedExecutor = yield* makeExecutor(component("c", { kind: "http_local_json", http: { port: "auto" } }), deps)
      expect(yield* supervisedExecutor.invoke(envelope)).toEqual({ decision: "allow", annotations: { by: "http" } })
      const stdio = yield* makeExecutor(
        component("d", { kind: "command_stdio", launch: { executable: "/bin/sh", args: ["-c", `cat >/dev/null; echo '{"decision":"allow"}'`] } }),
        deps
      )
      expect(yield* stdio.invoke(envelope)).toEqual({ decision: "allow" })
      const unknown = yield* Effect.flip(makeExecutor(component("e", { kind: "in_process", function: "nope" }), deps))
      expect(unknown.message).toContain(`no in_process function named "nope" is registered (known: echo)`)
    }).pipe(Effect.provide(FakeLauncher)))
})
