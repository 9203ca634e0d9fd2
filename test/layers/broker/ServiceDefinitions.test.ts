import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { makeServiceDefinitions, parseServiceDefinition } from "../../../src/layers/broker/ServiceDefinitions.js"
import { checkVersion, type ServiceDefinition } from "../../../src/services/broker/ServiceDefinition.js"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-servicedefs-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))
let counter = 0
const freshDir = () => {
  const dir = Path.join(root, `case-${counter++}`)
  Fs.mkdirSync(dir, { mode: 0o700 })
  Fs.chmodSync(dir, 0o700)
  return dir
}

const minimal = {
  name: "redis",
  default_version: "7.2.4",
  launch: { executable: "/usr/bin/redis-server", args: ["--port", "0", "--unixsocket", "{path}"] },
  endpoint: { kind: "unix" }
}

const write = (dir: string, name: string, value: unknown) => {
  const file = Path.join(dir, `${name}.service.json`)
  Fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value, null, 2), { mode: 0o600 })
  return file
}

const lookupError = (dir: string, name: string) =>
  Effect.flatMap(makeServiceDefinitions(dir), (definitions) => Effect.flip(definitions.lookup(name)))

describe("service definitions", () => {
  it.effect("decodes a definition and fills in the defaults", () =>
    Effect.gen(function*() {
      const dir = freshDir()
      write(dir, "redis", minimal)
      const definitions = yield* makeServiceDefinitions(dir)
      const definition = yield* definitions.lookup("redis")
      expect(definition).toEqual({
        ...minimal,
        launch: { ...minimal.launch, env: {} },
        ready_timeout_ms: 10_000,
        sandbox_profile: "none"
      })
    }))

  it.effect("picks up an edited file on the next lookup, without a restart", () =>
    Effect.gen(function*() {
      const dir = freshDir()
      write(dir, "redis", minimal)
      const definitions = yield* makeServiceDefinitions(dir)
      expect((yield* definitions.lookup("redis")).default_version).toBe("7.2.4")
      // Same size on purpose: only the content (and mtime/ctime) differs.
      write(dir, "redis", { ...minimal, default_version: "7.2.5" })
      expect((yield* definitions.lookup("redis")).default_version).toBe("7.2.5")
      write(dir, "redis", "{ broken")
      const broken = yield* Effect.flip(definitions.lookup("redis"))
      expect(broken._tag).toBe("ConfigError")
    }))

  it.effect("answers UnknownService for a missing file, a missing directory and a name that cannot be a file", () =>
    Effect.gen(function*() {
      const dir = freshDir()
      const missing = yield* lookupError(dir, "nope")
      expect(missing).toMatchObject({ _tag: "UnknownService", service: "nope", file: Path.join(dir, "nope.service.json") })
      expect(missing.message).toContain("no definition file")
      const noDir = yield* lookupError(Path.join(dir, "absent"), "redis")
      expect(noDir._tag).toBe("UnknownService")
      expect(noDir.message).toContain("does not exist")
      const traversal = yield* lookupError(dir, "../etc/passwd")
      expect(traversal._tag).toBe("UnknownService")
    }))

  it.effect("refuses a directory writable by group or others, naming it and its mode", () =>
    Effect.gen(function*() {
      const dir = freshDir()
      write(dir, "redis", minimal)
      Fs.chmodSync(dir, 0o775)
      const error = yield* lookupError(dir, "redis")
      expect(error._tag).toBe("UntrustedFile")
      expect(error.message).toBe(`${dir}: writable by group (mode 0775); chmod go-w ${dir}`)
      Fs.chmodSync(dir, 0o702)
      expect((yield* lookupError(dir, "redis")).message).toBe(`${dir}: writable by others (mode 0702); chmod go-w ${dir}`)
    }))

  it.effect("refuses a definition file writable by group or others", () =>
    Effect.gen(function*() {
      const dir = freshDir()
      const file = write(dir, "redis", minimal)
      Fs.chmodSync(file, 0o664)
      const error = yield* lookupError(dir, "redis")
      expect(error.message).toBe(`${file}: writable by group (mode 0664); chmod go-w ${file}`)
    }))

  const invalid: ReadonlyArray<readonly [string, unknown, string, string]> = [
    ["a name that is not the file's base name", { ...minimal, name: "valkey" }, "name", "must equal the file's base name \"redis\", got \"valkey\""],
    ["a relative executable", { ...minimal, launch: { executable: "bin/redis-server" } }, "launch.executable", "must be an absolute path, got \"bin/redis-server\""],
    ["an unknown endpoint kind", { ...minimal, endpoint: { kind: "udp" } }, "endpoint.kind", "Expected \"unix\" | \"tcp\", actual \"udp\""],
    ["a missing default_version", { ...minimal, default_version: undefined }, "default_version", "is missing"],
    ["an unknown field", { ...minimal, ready_timeout: 5 }, "ready_timeout", "is unexpected"],
    ["a floor that is not x.y.z", { ...minimal, min_version: "7" }, "min_version", "min_version is a semver floor like \"1.2.0\" (x.y.z)"],
    ["{port} with a unix endpoint", { ...minimal, launch: { executable: "/bin/x", args: ["--port", "{port}"] } }, "launch.args[1]", "{port} is only available when endpoint.kind is \"tcp\""],
    ["{path} in env with a tcp endpoint", { ...minimal, launch: { executable: "/bin/x", env: { SOCK: "{path}" } }, endpoint: { kind: "tcp" } }, "launch.env.SOCK", "{path} is only available when endpoint.kind is \"unix\""],
    ["a default version below its own floor", { ...minimal, min_version: "8.0.0" }, "default_version", "redis version \"7.2.4\" is below min_version 8.0.0"],
    ["a non-positive ready_timeout_ms", { ...minimal, ready_timeout_ms: 0 }, "ready_timeout_ms", "expected a whole number of milliseconds from 1 to 86400000 (24 h)"],
    ["a ready_timeout_ms past Node's timer limit", { ...minimal, ready_timeout_ms: 2 ** 31 }, "ready_timeout_ms", "expected a whole number of milliseconds from 1 to 86400000 (24 h)"],
    ["an idle_exit_sec over 24 h", { ...minimal, idle_exit_sec: 86_401 }, "idle_exit_sec", "expected a number of seconds above 0 and at most 86400 (24 h)"]
  ]

  for (const [what, value, path, reason] of invalid) {
    it.effect(`names the file and the JSON path for ${what}`, () =>
      Effect.gen(function*() {
        const dir = freshDir()
        const file = write(dir, "redis", value)
        const error = yield* lookupError(dir, "redis")
        expect(error).toMatchObject({ _tag: "ConfigError", file, path })
        if (error._tag === "ConfigError") expect(error.reason).toContain(reason)
      }))
  }

  it("reports invalid JSON at the root of the file", () => {
    const parsed = parseServiceDefinition("/x/redis.service.json", "{\"name\": ")
    expect(Either.isLeft(parsed) && parsed.left.path).toBe("(root)")
    expect(Either.isLeft(parsed) && parsed.left.reason).toMatch(/^invalid JSON: /)
  })
})

describe("checkVersion", () => {
  const definition: Pick<ServiceDefinition, "name" | "default_version" | "min_version" | "version_allow_list"> = {
    name: "redis",
    default_version: "7.2.4",
    min_version: "7.0.0"
  }

  it("resolves the default when no version is asked for", () => {
    expect(checkVersion(definition, undefined)).toEqual(Either.right("7.2.4"))
  })

  it("compares against the floor by semver precedence, not as text", () => {
    expect(checkVersion(definition, "7.10.0")).toEqual(Either.right("7.10.0"))
    expect(checkVersion(definition, "7.0.0")).toEqual(Either.right("7.0.0"))
    expect(checkVersion(definition, "6.99.99")).toEqual(
      Either.left({ code: "version_blocked", message: "redis version \"6.99.99\" is below min_version 7.0.0" })
    )
    // A pre-release comes before its release.
    expect(Either.isLeft(checkVersion(definition, "7.0.0-rc1"))).toBe(true)
    expect(checkVersion(definition, "7.0.1-rc1")).toEqual(Either.right("7.0.1-rc1"))
    expect(checkVersion(definition, "v7.1.0")).toEqual(Either.right("v7.1.0"))
  })

  it("blocks a version that is not semver when there is a floor", () => {
    const result = checkVersion(definition, "latest")
    expect(Either.isLeft(result) && result.left.message).toBe(
      "redis version \"latest\" is not semver (x.y.z), so it cannot be checked against min_version 7.0.0"
    )
  })

  it("allows only exact members of the allow-list, naming the list", () => {
    const listed = { name: "redis", default_version: "7.2.4", version_allow_list: ["7.2.4", "7.4.0"] }
    expect(checkVersion(listed, "7.4.0")).toEqual(Either.right("7.4.0"))
    expect(checkVersion(listed, "7.4")).toEqual(
      Either.left({ code: "version_blocked", message: "redis version \"7.4\" is not in version_allow_list [\"7.2.4\", \"7.4.0\"]" })
    )
  })

  it("applies floor and allow-list together", () => {
    const both = { ...definition, version_allow_list: ["6.2.0", "7.2.4"] }
    expect(Either.isLeft(checkVersion(both, "6.2.0"))).toBe(true)
    expect(checkVersion(both, "7.2.4")).toEqual(Either.right("7.2.4"))
  })

  it("blocks versions that could escape a path or a file name", () => {
    for (const version of ["../7", "7/8", "", ".hidden", "a b"]) {
      expect(Either.isLeft(checkVersion({ name: "x", default_version: "1" }, version))).toBe(true)
    }
  })
})
