/**
 * `depends_on` is checked when the config loads: an unknown id or a cycle is a `ConfigError` naming the
 * fragment that set it, and nothing starts.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { validateAll } from "../../../../src/layers/host/config/ConfigLoader.js"
import { configTree, removeConfigTrees } from "../config/configTree.js"

afterEach(removeConfigTrees)

const component = (dependsOn: ReadonlyArray<string>) => ({
  kind: "in_process",
  function: "allow",
  depends_on: dependsOn
})

describe("depends_on in the config", () => {
  it.effect("an unknown id is a load-time error naming the file, the path and the ids that exist", () =>
    Effect.gen(function*() {
      const { file, options } = configTree({
        "data/config/40-base.json": { components: { "app.db": component([]) } },
        "data/config/50-web.json": { components: { "app.web": component(["app.db", "app.cache"]) } }
      })
      const problems = (yield* validateAll(options)).filter((problem) => problem.path.includes("depends_on"))
      expect(problems.map((problem) => problem.message)).toEqual([
        `${file("data/config/50-web.json")}: components["app.web"].depends_on[1]: "app.web" depends on "app.cache", which is not ` +
        `in components (defined: "app.db", "app.web")`
      ])
    }))

  it.effect("a cycle is a load-time error naming the file that closes it and the whole cycle", () =>
    Effect.gen(function*() {
      const { file, options } = configTree({
        "data/config/40-a.json": { components: { "app.a": component(["app.b"]) } },
        "data/config/50-b.json": { components: { "app.b": component(["app.c"]), "app.c": component(["app.a"]) } }
      })
      const problems = (yield* validateAll(options)).filter((problem) => problem.path.includes("depends_on"))
      expect(problems.map((problem) => problem.message)).toEqual([
        `${file("data/config/50-b.json")}: components["app.c"].depends_on[0]: depends_on makes a cycle ` +
        "(app.a → app.b → app.c → app.a): no order can start them; remove one of these dependencies"
      ])
    }))
})
