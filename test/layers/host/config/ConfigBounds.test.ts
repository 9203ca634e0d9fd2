import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Schema, SchemaAST as AST } from "effect"
import { loadHostConfig, renderConfigPath } from "../../../../src/layers/host/config/ConfigLoader.js"
import { ServiceDefinition } from "../../../../src/services/broker/ServiceDefinition.js"
import { HostConfig, maxDurationMs } from "../../../../src/services/host/HostConfig.js"
import { configTree, removeConfigTrees } from "./configTree.js"

afterEach(removeConfigTrees)

const corralScript = NodePath.resolve(import.meta.dirname, "../../../../dist/bin/corral.js")

const problemOf = (files: Readonly<Record<string, unknown>>) =>
  Effect.gen(function*() {
    const { file, options } = configTree(files)
    const loaded = yield* Effect.either(loadHostConfig(options))
    if (Either.isRight(loaded)) return expect.fail("the config loaded; expected a load-time problem")
    const error = loaded.left
    return { file: error.file, path: error.path, reason: error.reason, expectedFile: file("data/config/50-ops.json") }
  })

/** The largest value a node accepts, read from its refinements' JSON Schema `maximum` (any member of a union). */
const maximumOf = (ast: AST.AST): number | undefined => {
  switch (ast._tag) {
    case "Union": {
      // Every member JSON can say must be bounded; the largest bound is the union's.
      const maxima = ast.types.filter((member) => member._tag !== "UndefinedKeyword").map(maximumOf)
      return maxima.every((max) => max !== undefined) ? Math.max(...maxima) : undefined
    }
    case "Refinement": {
      const own = Option.getOrUndefined(AST.getJSONSchemaAnnotation(ast))
      const max = own !== undefined && "maximum" in own && typeof own.maximum === "number" ? own.maximum : undefined
      return max ?? maximumOf(ast.from)
    }
    case "Transformation":
      return maximumOf(ast.from)
    default:
      return undefined
  }
}

/** Every `*_ms` / `*_sec` field under `ast` with the largest value it accepts, in milliseconds. */
const durationFields = (ast: AST.AST, path: string, out: Array<readonly [string, number | undefined]>): void => {
  switch (ast._tag) {
    case "TypeLiteral":
      for (const property of ast.propertySignatures) {
        const name = String(property.name)
        const at = `${path}.${name}`
        const unit = name.endsWith("_ms") ? 1 : name.endsWith("_sec") ? 1000 : undefined
        if (unit !== undefined) {
          const max = maximumOf(property.type)
          out.push([at, max === undefined ? undefined : max * unit])
        }
        durationFields(property.type, at, out)
      }
      for (const index of ast.indexSignatures) durationFields(index.type, `${path}[*]`, out)
      return
    case "Union":
      return ast.types.forEach((member) => durationFields(member, path, out))
    case "Refinement":
    case "Transformation":
      return durationFields(ast.from, path, out)
    case "TupleType":
      return ast.rest.forEach((rest) => durationFields(rest.type, `${path}[]`, out))
    default:
      return
  }
}

describe("component ids are safe file names", () => {
  for (const id of ["../x", "../../escaped", "a/b", "..", ".hidden", "a..b", "Upper", "-dash", "x".repeat(65)]) {
    it.effect(`refuses ${JSON.stringify(id)}, naming the file and the path`, () =>
      Effect.gen(function*() {
        const problem = yield* problemOf({ "data/config/50-ops.json": { components: { [id]: { kind: "in_process", function: "f" } } } })
        expect(problem.file).toBe(problem.expectedFile)
        expect(problem.path).toBe(renderConfigPath(["components", id]))
        expect(problem.reason).toContain("component id (1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit, no \"..\")")
      }))
  }

  it.effect("accepts the bundled style of id", () =>
    Effect.gen(function*() {
      const { options } = configTree({ "data/config/50-ops.json": { components: { "middleware.dator_2-b": { kind: "in_process", function: "f" } } } })
      expect(Object.keys((yield* loadHostConfig(options)).config.components)).toEqual(["middleware.dator_2-b"])
    }))

  it("a host given a ../ id exits at once, naming the file and path, and writes nothing outside its data dir", async () => {
    expect(Fs.existsSync(corralScript), `${corralScript} is missing: run \`npm run build\` first`).toBe(true)
    const { file, options, root } = configTree({
      "data/config/50-ops.json": {
        components: {
          "../../escaped": {
            kind: "http_local_json",
            launch: { executable: "/bin/sleep", args: ["30"] },
            http: { port: "auto", startup_timeout_ms: 2_000 },
            restart_policy: { mode: "never" }
          }
        }
      }
    })
    const child = spawn(process.execPath, [corralScript, "up", "--data-dir", options.dataDir], { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const outside = () => Fs.readdirSync(root).filter((name) => name !== "data")
    // Before ids were checked, the host started and wrote <root>/escaped.log; wait for an exit or an escape.
    const deadline = Date.now() + 10_000
    while (child.exitCode === null && child.signalCode === null && outside().length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL")
    expect(outside()).toEqual([])
    expect(child.exitCode).not.toBe(0)
    expect(child.exitCode).not.toBeNull()
    expect(stderr).toContain(`${file("data/config/50-ops.json")}: components["../../escaped"]: expected a key that is a component id`)
  }, 15_000)
})

describe("every duration is bounded at load", () => {
  it("every *_ms and *_sec field of the host config and of a service definition has a maximum of at most 24 h", () => {
    const fields: Array<readonly [string, number | undefined]> = []
    durationFields(AST.encodedBoundAST(HostConfig.ast), "config", fields)
    durationFields(AST.encodedBoundAST(ServiceDefinition.ast), "service", fields)
    expect(fields.length).toBeGreaterThan(10)
    expect(fields.filter(([, max]) => max === undefined || max > maxDurationMs)).toEqual([])
    expect(maxDurationMs).toBeLessThan(2 ** 31)
  })

  it.effect("refuses a request_timeout_ms of 2^31 (Node's timer overflow), saying the bound", () =>
    Effect.gen(function*() {
      const problem = yield* problemOf({
        "data/config/50-ops.json": {
          components: { "middleware.x": { kind: "local_http_json", http: { endpoint: "http://127.0.0.1:9", request_timeout_ms: 2 ** 31 } } }
        }
      })
      expect(problem).toMatchObject({
        file: problem.expectedFile,
        path: "components[\"middleware.x\"].http.request_timeout_ms",
        reason: "expected a whole number of milliseconds from 1 to 86400000 (24 h), got 2147483648"
      })
    }))

  it.effect("refuses a window_sec over 24 h and a handler_timeout_ms of 0", () =>
    Effect.gen(function*() {
      const window = yield* problemOf({
        "data/config/50-ops.json": {
          components: { "middleware.x": { kind: "in_process", function: "f", restart_policy: { window_sec: 86_401 } } }
        }
      })
      expect(window.path).toBe("components[\"middleware.x\"].restart_policy.window_sec")
      expect(window.reason).toBe("expected a whole number of seconds from 1 to 86400 (24 h), got 86401")
      const zero = yield* problemOf({ "data/config/50-ops.json": { host: { control: { handler_timeout_ms: 0 } } } })
      expect(zero.path).toBe("host.control.handler_timeout_ms")
      expect(zero.reason).toBe("expected a whole number of milliseconds from 1 to 86400000 (24 h), got 0")
    }))

  it("bounds a service definition's ready_timeout_ms and idle_exit_sec too", () => {
    const decode = Schema.decodeUnknownEither(ServiceDefinition)
    const base = { name: "svc", default_version: "1.0.0", launch: { executable: "/bin/true" }, endpoint: { kind: "unix" } }
    expect(decode({ ...base, ready_timeout_ms: 2 ** 31 })._tag).toBe("Left")
    expect(decode({ ...base, idle_exit_sec: 86_401 })._tag).toBe("Left")
    expect(decode({ ...base, ready_timeout_ms: 86_400_000, idle_exit_sec: 0.5 })._tag).toBe("Right")
  })
})

describe("the control API binds loopback only", () => {
  for (const host of ["0.0.0.0", "::", "192.168.1.5", "127.0.0.256", "example.com", ""]) {
    it.effect(`refuses host.control.host ${JSON.stringify(host)}`, () =>
      Effect.gen(function*() {
        const problem = yield* problemOf({ "data/config/50-ops.json": { host: { control: { host } } } })
        expect(problem).toMatchObject({
          file: problem.expectedFile,
          path: "host.control.host",
          reason: `expected a loopback address (127.0.0.0/8, "::1" or "localhost"; the control API serves this machine only), got ${JSON.stringify(host)}`
        })
      }))
  }

  it.effect("accepts 127.0.0.0/8, ::1 and localhost", () =>
    Effect.gen(function*() {
      for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) {
        const { options } = configTree({ "data/config/50-ops.json": { host: { control: { host } } } })
        expect((yield* loadHostConfig(options)).config.host.control.host).toBe(host)
      }
    }))
})
