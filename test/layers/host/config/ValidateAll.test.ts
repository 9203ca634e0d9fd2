/**
 * `validateAll` (what `corral config check` and a refused reload print) lists every problem at once,
 * even when they belong to different stages of the load: a field a fragment's own check refuses and a
 * hook in another file naming an unknown component come back together, each naming its file. Problems
 * that would only echo a refused value are not repeated, and a file that does not parse still stops there.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { loadHostConfig, validateAll } from "../../../../src/layers/host/config/ConfigLoader.js"
import { configTree, removeConfigTrees } from "./configTree.js"

afterEach(removeConfigTrees)

const datorFactory = {
  components: {
    "middleware.dator": {
      kind: "http_local_json",
      module_id: "dator",
      launch: { executable: "{module_dir}/bin/dator", args: ["--port", "{port}"] },
      http: { port: "auto" }
    }
  },
  hooks: { ingress: ["middleware.dator"] }
}

const rendered = (errors: ReadonlyArray<{ readonly file: string; readonly path: string; readonly reason: string }>) =>
  errors.map((error) => ({ file: error.file, path: error.path, reason: error.reason }))

describe("validateAll lists every problem at once", () => {
  it.effect("a refused field in one file and a hook naming an unknown component in another: both, each naming its file", () =>
    Effect.gen(function*() {
      const { file, options } = configTree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/10-typo.json": { components: { "middleware.dator": { restart_policy: { max_restart: 5 } } } },
        "data/config/20-hooks.json": { hooks: { egress: ["middleware.nope"] } }
      })
      expect(rendered(yield* validateAll(options))).toEqual([
        {
          file: file("data/config/10-typo.json"),
          path: `components["middleware.dator"].restart_policy.max_restart`,
          reason: "unknown field \"max_restart\"; did you mean \"max_restarts\"?"
        },
        {
          file: file("data/config/20-hooks.json"),
          path: "hooks.egress[0]",
          reason: "hook \"egress\" names component \"middleware.nope\", which is not in components (defined: \"middleware.dator\")"
        }
      ])
      const first = yield* Effect.flip(loadHostConfig(options))
      expect(first.reason).toContain("(and 1 more problem)")
    }))

  it.effect("does not repeat a refused value as a second problem: a refused component or kind is reported once", () =>
    Effect.gen(function*() {
      const { file, options } = configTree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/10-extra.json": { components: { extra: 5, "middleware.dator": { kind: 7 } } },
        "data/config/20-hooks.json": { hooks: { egress: ["extra"] } }
      })
      expect(rendered(yield* validateAll(options)).map((problem) => [problem.file, problem.path])).toEqual([
        [file("data/config/10-extra.json"), "components.extra"],
        [file("data/config/10-extra.json"), `components["middleware.dator"].kind`]
      ])
    }))

  it.effect("a file that is not JSON still stops the check there: what it would define is unknown", () =>
    Effect.gen(function*() {
      const { file, options } = configTree({
        "modules/dator/config/50-dator.json": datorFactory,
        "data/config/10-broken.json": "{",
        "data/config/20-hooks.json": { hooks: { egress: ["middleware.nope"] } }
      })
      expect(rendered(yield* validateAll(options)).map((problem) => problem.file)).toEqual([file("data/config/10-broken.json")])
    }))
})
