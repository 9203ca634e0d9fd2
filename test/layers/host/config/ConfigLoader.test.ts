import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import {
  hostDefaultsSource,
  loadHostConfig,
  renderConfigPath,
  renderEffectiveConfig,
  validateAll
} from "../../../../src/layers/host/config/ConfigLoader.js"
import { hostDefaults } from "../../../../src/layers/host/hostDefaults.js"
import { HostConfig } from "../../../../src/services/host/HostConfig.js"
import { configTree, removeConfigTrees } from "./configTree.js"

afterEach(removeConfigTrees)

const tree = configTree

/** Every entry under `root` with its mode, size, mtime and content hash. */
const snapshot = (root: string): Array<string> =>
  Fs.readdirSync(root, { recursive: true, encoding: "utf8" })
    .sort()
    .map((relative) => {
      const file = NodePath.join(root, relative)
      const stat = Fs.statSync(file)
      const hash = stat.isFile() ? Crypto.createHash("sha256").update(Fs.readFileSync(file)).digest("hex") : "dir"
      return `${relative} ${stat.mode} ${stat.size} ${stat.mtimeMs} ${hash}`
    })

const datorComponent = {
  kind: "http_local_json",
  module_id: "dator",
  launch: { executable: "{module_dir}/bin/dator", args: ["--port", "{port}"] },
  http: { port: "auto", request_timeout_ms: 5000 }
}

const datorFactory = {
  components: { "middleware.dator": datorComponent },
  hooks: { ingress: ["middleware.dator"] },
  modules: { dator: { rules: ["no-secrets"] } }
}

const configError = (error: { readonly file: string; readonly path: string; readonly reason: string }) => ({
  file: error.file,
  path: error.path,
  reason: error.reason
})

describe("loadHostConfig", () => {
  it.effect("merges factory fragments, then host defaults, then operator fragments, each in lexical file order", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/arca/config/10-b.json": { modules: { shared: { scalar: "arca/10-b", order: ["arca"], nested: { a: 1, keep: "arca" } } } },
        "modules/arca/config/9-a.json": { modules: { shared: { scalar: "arca/9-a", nested: { a: 2 } } } },
        "modules/arca/config/README.md": "not a fragment",
        "modules/dator/config/10-dator.json": { modules: { shared: { scalar: "dator/10", order: ["dator", "again"] } } },
        "modules/zeta/README.md": "a module without factory config",
        "modules/notes.json": { modules: { shared: { scalar: "not in a module's config dir" } } },
        "data/config/10-ops.json": { modules: { shared: { scalar: "ops/10", order: ["ops"] } } },
        "data/config/20-ops.json": { modules: { shared: { scalar: "ops/20", nested: { b: 3 } } } },
        "data/config/30-old.json.bak": { modules: { shared: { scalar: "backup files are ignored" } } }
      })
      const loaded = yield* loadHostConfig(options)

      expect(loaded.sources).toEqual([
        file("modules/arca/config/10-b.json"),
        file("modules/arca/config/9-a.json"),
        file("modules/dator/config/10-dator.json"),
        hostDefaultsSource,
        file("data/config/10-ops.json"),
        file("data/config/20-ops.json")
      ])
      expect(loaded.config.modules["shared"]).toEqual({
        scalar: "ops/20",
        order: ["ops"],
        nested: { a: 2, keep: "arca", b: 3 }
      })
    }))

  it.effect("host defaults override factory fragments and operator fragments override host defaults", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": { host: { logs: { keep: 9, max_bytes: 100 } } },
        "data/config/10-control.json": { host: { control: { port: 4100 } } }
      })
      const loaded = yield* loadHostConfig(options)

      expect(loaded.config.host.logs).toEqual({ keep: 3, max_bytes: 1_048_576 })
      expect(loaded.config.host.control).toEqual({ host: "127.0.0.1", port: 4100, max_connections: 64, handler_timeout_ms: 30_000, metrics_auth: true })
      expect(loaded.provenance("host.logs.keep")).toBe(hostDefaultsSource)
      expect(loaded.provenance("host.control.port")).toBe(file("data/config/10-control.json"))
      expect(loaded.provenance("host.control.host")).toBe(hostDefaultsSource)
    }))

  it.effect("an operator fragment overrides one factory value of a component and keeps the rest", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/50-dator.json": {
          components: { "middleware.dator": { http: { request_timeout_ms: 2500 }, restart_policy: { mode: "never" } } }
        }
      })
      const loaded = yield* loadHostConfig(options)
      const dator = loaded.config.components["middleware.dator"]

      expect(dator?.http?.request_timeout_ms).toBe(2500)
      expect(dator?.http?.port).toBe("auto")
      expect(dator?.launch?.executable).toBe(NodePath.join(file("modules/dator"), "bin/dator"))
      expect(dator?.restart_policy).toEqual({
        mode: "never",
        max_restarts: 3,
        window_sec: 60,
        backoff_initial_ms: 20,
        backoff_max_ms: 10_000,
        stable_after_sec: 120
      })
      expect(loaded.provenance(`components["middleware.dator"].http.request_timeout_ms`)).toBe(file("data/config/50-dator.json"))
      expect(loaded.provenance(`components["middleware.dator"].http.port`)).toBe(file("modules/dator/config/50-dator.json"))
      expect(loaded.provenance(`components["middleware.dator"].launch.args[1]`)).toBe(file("modules/dator/config/50-dator.json"))
      expect(loaded.provenance(`components["middleware.dator"].stop_timeout_ms`)).toBeUndefined()
    }))

  it.effect("replaces {module_dir} in factory fragments and {data_dir} everywhere with absolute paths, and keeps {port}", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": {
          ...datorFactory,
          components: {
            "middleware.dator": {
              ...datorComponent,
              launch: {
                executable: "{module_dir}/bin/dator",
                args: ["--port", "{port}", "--state", "{data_dir}/state/dator"],
                cwd: "{module_dir}",
                env: { DATOR_HOME: "{module_dir}", DATOR_CACHE: "{data_dir}/cache/{module_dir}" }
              }
            }
          }
        },
        "data/config/50-dator.json": { modules: { dator: { spool: "{data_dir}/spool" } } }
      })
      const relative = (dir: string) => NodePath.relative(process.cwd(), dir)
      const loaded = yield* loadHostConfig({ ...options, modulesDir: relative(options.modulesDir), dataDir: relative(options.dataDir) })
      const moduleDir = file("modules/dator")
      const dataDir = file("data")

      expect(loaded.config.components["middleware.dator"]?.launch).toEqual({
        executable: `${moduleDir}/bin/dator`,
        args: ["--port", "{port}", "--state", `${dataDir}/state/dator`],
        cwd: moduleDir,
        env: { DATOR_HOME: moduleDir, DATOR_CACHE: `${dataDir}/cache/${moduleDir}` }
      })
      expect(loaded.config.modules["dator"]).toEqual({ rules: ["no-secrets"], spool: `${dataDir}/spool` })
    }))

  it.effect("remembers which file set each path, and forgets the paths under a replaced value", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/60-modules.json": { modules: { dator: "disabled" } }
      })
      const loaded = yield* loadHostConfig(options)
      const factory = file("modules/dator/config/50-dator.json")

      expect(loaded.provenance("hooks.ingress")).toBe(factory)
      expect(loaded.provenance("hooks.ingress[0]")).toBe(factory)
      expect(loaded.provenance(`components["middleware.dator"].kind`)).toBe(factory)
      expect(loaded.provenance("modules.dator")).toBe(file("data/config/60-modules.json"))
      expect(loaded.provenance("modules.dator.rules")).toBeUndefined()
      expect(loaded.provenance("modules.dator.rules[0]")).toBeUndefined()
      expect(loaded.config.modules["dator"]).toBe("disabled")
    }))

  it.effect("with no modules or data directory the config is the host defaults", () =>
    Effect.gen(function*() {
      const { root } = tree({})
      const missing = { modulesDir: NodePath.join(root, "no-modules"), dataDir: NodePath.join(root, "no-data") }

      const withDefaults = yield* loadHostConfig({ ...missing, hostDefaults })
      expect(withDefaults.sources).toEqual([hostDefaultsSource])
      expect(withDefaults.config).toEqual(Schema.decodeUnknownSync(HostConfig)(hostDefaults))
      expect(withDefaults.config.components).toEqual({})

      const bare = yield* loadHostConfig(missing)
      expect(bare.sources).toEqual([])
      expect(bare.config).toEqual(Schema.decodeUnknownSync(HostConfig)({}))
    }))

  it.effect("never writes: files, modes and mtimes are the same after loading, failing and rendering", () =>
    Effect.gen(function*() {
      const valid = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/10-control.json": { host: { control: { port: 4100 } } }
      })
      const invalid = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/10-control.json": { host: { control: { port: "4100" } } },
        "data/config/20-broken.json": "{"
      })
      const before = [snapshot(valid.root), snapshot(invalid.root)]

      const loaded = yield* loadHostConfig(valid.options)
      renderEffectiveConfig(loaded, { control_url: "http://127.0.0.1:4100", data_dir: valid.options.dataDir })
      expect(yield* validateAll(valid.options)).toEqual([])
      yield* Effect.flip(loadHostConfig(invalid.options))
      expect(yield* validateAll(invalid.options)).toHaveLength(2)

      expect([snapshot(valid.root), snapshot(invalid.root)]).toEqual(before)
      expect(before[0]).toHaveLength(7)
    }))
})

describe("loadHostConfig errors name the file, the JSON path and the reason", () => {
  it.effect("invalid JSON, with the parser's message and its position", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "data/config/10-quotes.json": "{\n  \"host\": {\n    'control': {}\n  }\n}",
        "data/config/20-literal.json": "{\"hooks\": tru}"
      })
      const [quotes, literal] = yield* validateAll(options)

      expect(quotes && configError(quotes)).toEqual({
        file: file("data/config/10-quotes.json"),
        path: "(root)",
        reason: "invalid JSON: Expected property name or '}' in JSON at position 18 (line 3, column 5)"
      })
      expect(literal && configError(literal)).toEqual({
        file: file("data/config/20-literal.json"),
        path: "(root)",
        reason: "invalid JSON: Unexpected token '}' (line 1, column 11)"
      })
    }))

  it.effect("a fragment that is not a JSON object", () =>
    Effect.gen(function*() {
      const { file, options } = tree({ "data/config/10-list.json": "[1, 2]" })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({ file: file("data/config/10-list.json"), path: "(root)", reason: "expected a JSON object, got [1,2]" })
      expect(error.message).toBe(`${file("data/config/10-list.json")}: (root): expected a JSON object, got [1,2]`)
    }))

  it.effect("an unknown top-level section", () =>
    Effect.gen(function*() {
      const { file, options } = tree({ "data/config/10-plugins.json": { plugins: {} } })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/10-plugins.json"),
        path: "plugins",
        reason: "unknown top-level section \"plugins\"; expected one of \"host\", \"components\", \"hooks\", \"modules\""
      })
    }))

  it.effect("a misspelt field inside a component, even when another fragment sets the real one", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/50-dator.json": { components: { "middleware.dator": { http: { reqest_timeout_ms: 2500 } } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/50-dator.json"),
        path: `components["middleware.dator"].http.reqest_timeout_ms`,
        reason: "unknown field \"reqest_timeout_ms\"; did you mean \"request_timeout_ms\"?"
      })
    }))

  it.effect("a value of the wrong type", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/50-dator.json": { components: { "middleware.dator": { http: { request_timeout_ms: "5s" } } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/50-dator.json"),
        path: `components["middleware.dator"].http.request_timeout_ms`,
        reason: "expected an integer between 1 and 86400000, got \"5s\""
      })
      expect(error.message).toBe(
        `${file("data/config/50-dator.json")}: components["middleware.dator"].http.request_timeout_ms: expected an integer between 1 and 86400000, got "5s"`
      )
    }))

  it.effect("null where the schema has no null", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/50-dator.json": { components: { "middleware.dator": { http: null } }, modules: { dator: null } }
      })
      const errors = yield* validateAll(options)

      expect(errors.map(configError)).toEqual([
        { file: file("data/config/50-dator.json"), path: `components["middleware.dator"].http`, reason: "expected an object, got null" }
      ])
    }))

  it.effect("an unknown sandbox profile, listing the allowed ones", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/50-dator.json": { components: { "middleware.dator": { sandbox_profile: "module-restrictd" } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/50-dator.json"),
        path: `components["middleware.dator"].sandbox_profile`,
        reason: "expected one of \"none\", \"module-restricted\", \"module-isolated\", got \"module-restrictd\"; did you mean \"module-restricted\"?"
      })
    }))

  it.effect("a hook naming a component that does not exist, blamed on the file that defined the hook", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/70-hooks.json": { hooks: { ingress: ["middleware.dator", "middleware.arca"] } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/70-hooks.json"),
        path: "hooks.ingress[1]",
        reason: "hook \"ingress\" names component \"middleware.arca\", which is not in components (defined: \"middleware.dator\")"
      })
    }))

  it.effect("a hook in object form naming a component that does not exist", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/70-hooks.json": { hooks: { egress: { components: ["middleware.dator", "middleware.nope"], failure_policy: "fail_open" } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/70-hooks.json"),
        path: "hooks.egress.components[1]",
        reason: "hook \"egress\" names component \"middleware.nope\", which is not in components (defined: \"middleware.dator\")"
      })
    }))

  it.effect("an http_local_json component without launch, blamed on the file that set its kind", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": {
          components: { "middleware.dator": { kind: "http_local_json", http: { port: "auto" } } }
        },
        "data/config/50-dator.json": { components: { "middleware.dator": { http: { request_timeout_ms: 2500 } } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("modules/dator/config/50-dator.json"),
        path: `components["middleware.dator"].launch`,
        reason: "is required for kind \"http_local_json\""
      })
    }))

  it.effect("each kind's own requirements and an id that differs from its key", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "data/config/40-components.json": {
          components: {
            fetcher: { kind: "http_local_json", launch: { executable: "/bin/true" }, http: { request_timeout_ms: 100 } },
            stdio: { kind: "command_stdio" },
            remote: { kind: "local_http_json", http: { port: 8080 } },
            local: { kind: "in_process", id: "locale" }
          }
        }
      })
      const errors = yield* validateAll(options)
      const source = file("data/config/40-components.json")

      expect(errors.map(configError)).toEqual([
        { file: source, path: "components.fetcher.http", reason: "needs \"port\" (\"auto\" or a number) or \"endpoint\" for kind \"http_local_json\"" },
        { file: source, path: "components.stdio.launch", reason: "is required for kind \"command_stdio\"" },
        { file: source, path: "components.remote.http.endpoint", reason: "is required for kind \"local_http_json\"" },
        { file: source, path: "components.local.id", reason: "must equal the component's key \"local\", got \"locale\"" },
        { file: source, path: "components.local.function", reason: "is required for kind \"in_process\"" }
      ])
    }))

  it.effect("a field no fragment sets, after merging, blamed on the fragment that made the component", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/80-extra.json": { components: { "middleware.extra": { http: { endpoint: "http://127.0.0.1:9000" } } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/80-extra.json"),
        path: `components["middleware.extra"].kind`,
        reason: "is required, and no fragment sets it"
      })
    }))

  it.effect("{module_dir} in an operator fragment", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/50-dator.json": { components: { "middleware.dator": { launch: { cwd: "{module_dir}/work" } } } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))

      expect(configError(error)).toEqual({
        file: file("data/config/50-dator.json"),
        path: `components["middleware.dator"].launch.cwd`,
        reason: "{module_dir} is only available in a module's factory fragments (<modules>/<m>/config/*.json)"
      })
    }))

  it.effect("the first problem says how many more there are, and validateAll lists them all in merge order", () =>
    Effect.gen(function*() {
      const { file, options } = tree({
        "modules/dator/config/50-dator.json": {
          components: { "middleware.dator": { ...datorComponent, restart_policy: { max_restart: 5 } } }
        },
        "data/config/10-control.json": { host: { control: { port: 70000 } } },
        "data/config/20-hooks.json": { hooks: { ingress: "middleware.dator" } }
      })
      const error = yield* Effect.flip(loadHostConfig(options))
      const all = yield* validateAll(options)

      expect(configError(error)).toEqual({
        file: file("modules/dator/config/50-dator.json"),
        path: `components["middleware.dator"].restart_policy.max_restart`,
        reason: "unknown field \"max_restart\"; did you mean \"max_restarts\"? (and 2 more problems)"
      })
      expect(all.map(configError)).toEqual([
        {
          file: file("modules/dator/config/50-dator.json"),
          path: `components["middleware.dator"].restart_policy.max_restart`,
          reason: "unknown field \"max_restart\"; did you mean \"max_restarts\"?"
        },
        { file: file("data/config/10-control.json"), path: "host.control.port", reason: "expected an integer between 0 and 65535, got 70000" },
        {
          file: file("data/config/20-hooks.json"),
          path: "hooks.ingress",
          reason: "expected an array (each item a non-empty string) or an object, got \"middleware.dator\""
        }
      ])
    }))

  it.effect("validateAll finds nothing in a valid config", () =>
    Effect.gen(function*() {
      const { options } = tree({ "modules/dator/config/50-dator.json": datorFactory })
      expect(yield* validateAll(options)).toEqual([])
    }))
})

describe("renderEffectiveConfig", () => {
  it.effect("prints the resolved config, with runtime facts under `runtime` only when given", () =>
    Effect.gen(function*() {
      const { options } = tree({ "modules/dator/config/50-dator.json": datorFactory })
      const loaded = yield* loadHostConfig(options)
      const runtime = { control_url: "http://127.0.0.1:41234", pid: 4242 }

      const withRuntime: unknown = JSON.parse(renderEffectiveConfig(loaded, runtime))
      expect(withRuntime).toEqual({ ...JSON.parse(JSON.stringify(loaded.config)), runtime })
      const plain = renderEffectiveConfig(loaded)
      expect(JSON.parse(plain)).toEqual(JSON.parse(JSON.stringify(loaded.config)))
      expect(plain).not.toContain("\"runtime\"")
      expect(plain.split("\n")[1]).toBe("  \"host\": {")
    }))
})

describe("renderConfigPath", () => {
  it("writes dotted names, bracketed keys that are not plain names, and array indexes", () => {
    expect(renderConfigPath([])).toBe("(root)")
    expect(renderConfigPath(["components", "middleware.dator", "http", "request_timeout_ms"])).toBe(
      `components["middleware.dator"].http.request_timeout_ms`
    )
    expect(renderConfigPath(["hooks", "ingress", 1])).toBe("hooks.ingress[1]")
    expect(renderConfigPath(["modules", "orbiplex-dator", "with space"])).toBe(`modules.orbiplex-dator["with space"]`)
  })
})
