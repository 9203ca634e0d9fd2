import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { loadHostConfig } from "../../../../src/layers/host/config/ConfigLoader.js"
import { otherUser } from "../../../support/otherUser.js"
import { configTree, removeConfigTrees } from "./configTree.js"

afterEach(removeConfigTrees)

const other = otherUser()
const noOther = "skip" in other ? other.skip : undefined
if (noOther !== undefined) console.log(`skipping the other-user launch trust test: ${noOther}`)

const bundledModules = NodePath.resolve(import.meta.dirname, "../../../../modules")

/** A supervised component launching `executable` with `args`, in the operator fragment `50-ops.json`. */
const supervised = (executable: string, args: ReadonlyArray<string> = [], env: Readonly<Record<string, string>> = {}) => ({
  components: {
    "middleware.x": { kind: "http_local_json", launch: { executable, args, env }, http: { port: "auto" } }
  }
})

/** A tree with `<root>/<relative>` written as an executable script of `mode`. */
const withScript = (relative: string, mode: number) => {
  const tree = configTree({})
  const script = tree.file(relative)
  Fs.mkdirSync(NodePath.dirname(script), { recursive: true })
  Fs.writeFileSync(script, "#!/bin/sh\nexit 0\n")
  Fs.chmodSync(script, mode)
  return { ...tree, script }
}

/** Writes the operator fragment and loads: it must fail; the error's file, path and reason. */
const problem = (tree: ReturnType<typeof configTree>, fragment: unknown) =>
  Effect.gen(function*() {
    const file = tree.file("data/config/50-ops.json")
    Fs.mkdirSync(NodePath.dirname(file), { recursive: true })
    Fs.writeFileSync(file, JSON.stringify(fragment))
    const loaded = yield* Effect.either(loadHostConfig(tree.options))
    if (Either.isRight(loaded)) return expect.fail("the config loaded; expected a launch-trust problem")
    expect(loaded.left.file).toBe(file)
    return { path: loaded.left.path, reason: loaded.left.reason }
  })

describe("a component's launch must be trusted at load", () => {
  it.effect("refuses an executable writable by others, naming the fragment and components.<id>.launch.executable", () =>
    Effect.gen(function*() {
      const tree = withScript("bin/run.sh", 0o777)
      expect(yield* problem(tree, supervised(tree.script))).toEqual({
        path: "components[\"middleware.x\"].launch.executable",
        reason: `refusing to run ${tree.script}: writable by others (mode 0777); chmod go-w ${tree.script}`
      })
    }))

  it.effect("refuses an executable in a directory writable by others", () =>
    Effect.gen(function*() {
      const tree = withScript("shared/run.sh", 0o755)
      const shared = NodePath.dirname(tree.script)
      Fs.chmodSync(shared, 0o777)
      const found = yield* problem(tree, supervised(tree.script))
      expect(found.reason).toBe(`refusing to run ${tree.script}: in ${shared}, which is writable by others (mode 0777); chmod go-w ${shared}`)
    }))

  it.effect("refuses a bare name whose copy on the launch PATH others can write", () =>
    Effect.gen(function*() {
      const tree = withScript("tools/corral-tool", 0o775)
      const found = yield* problem(tree, supervised("corral-tool", [], { PATH: NodePath.dirname(tree.script) }))
      expect(found.path).toBe("components[\"middleware.x\"].launch.executable")
      expect(found.reason).toBe(
        `refusing to run ("corral-tool" found in PATH) ${tree.script}: writable by group (mode 0775); chmod go-w ${tree.script}`
      )
    }))

  it.effect("refuses a script argument others can write, at launch.args[i]", () =>
    Effect.gen(function*() {
      const tree = withScript("mod/module.py", 0o666)
      const found = yield* problem(tree, supervised("/bin/sh", ["-e", tree.script]))
      expect(found.path).toBe("components[\"middleware.x\"].launch.args[1]")
      expect(found.reason).toContain(`${tree.script}: writable by others (mode 0666)`)
    }))

  it.effect("refuses an env_file others can write (it would set the module's environment), at launch.env_file, and accepts it once fixed", () =>
    Effect.gen(function*() {
      const tree = withScript("bin/run.sh", 0o755)
      const envFile = tree.file("secrets/module.env")
      Fs.mkdirSync(NodePath.dirname(envFile), { recursive: true })
      Fs.writeFileSync(envFile, "API_TOKEN=s3cret\n")
      Fs.chmodSync(envFile, 0o666)
      const fragment = supervised(tree.script)
      const withEnvFile = {
        components: { "middleware.x": { ...fragment.components["middleware.x"], launch: { executable: tree.script, env_file: envFile } } }
      }
      const found = yield* problem(tree, withEnvFile)
      expect(found).toEqual({
        path: "components[\"middleware.x\"].launch.env_file",
        reason: `refusing an env file others could change (it sets the module's environment): ${envFile}: writable by others (mode 0666); chmod go-w ${envFile}`
      })
      expect(found.reason).not.toContain("s3cret")
      Fs.chmodSync(envFile, 0o600)
      expect(Object.keys((yield* loadHostConfig(tree.options)).config.components)).toEqual(["middleware.x"])
    }))

  it.effect.skipIf(noOther !== undefined)("refuses an executable owned by another user", () =>
    Effect.gen(function*() {
      if ("skip" in other) return
      const tree = withScript("bin/run.sh", 0o755)
      Fs.chownSync(tree.script, other.uid, other.gid)
      const found = yield* problem(tree, supervised(tree.script))
      expect(found.reason).toContain(`${tree.script}: owned by uid ${other.uid}`)
    }))

  it.effect("loads the bundled modules (python3 on PATH, scripts in modules/) and a trusted or missing executable", () =>
    Effect.gen(function*() {
      const bundled = yield* loadHostConfig({ ...configTree({}).options, modulesDir: bundledModules })
      expect(Object.keys(bundled.config.components)).toEqual(expect.arrayContaining(["middleware.dator", "middleware.arca"]))
      const tree = withScript("bin/run.sh", 0o755)
      const fragment = {
        components: {
          ...supervised(tree.script).components,
          "middleware.later": { kind: "command_stdio", launch: { executable: tree.file("bin/not-yet") } }
        }
      }
      Fs.mkdirSync(tree.file("data/config"), { recursive: true })
      Fs.writeFileSync(tree.file("data/config/50-ops.json"), JSON.stringify(fragment))
      expect(Object.keys((yield* loadHostConfig(tree.options)).config.components)).toEqual(["middleware.x", "middleware.later"])
    }))
})
