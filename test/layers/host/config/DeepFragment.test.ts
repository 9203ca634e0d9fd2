/** A fragment nested past the JSON depth limit is a config error naming the file, never a crashed host. */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { loadHostConfig } from "../../../../src/layers/host/config/ConfigLoader.js"
import { configTree, removeConfigTrees } from "./configTree.js"

afterEach(removeConfigTrees)

describe("deeply nested fragments", () => {
  it.effect("a 200,000-deep fragment (valid or not) is refused by name, and the loader survives", () =>
    Effect.gen(function*() {
      const deep = `{"modules":{"x":${"[".repeat(200_000)}${"]".repeat(200_000)}}}`
      const broken = "[".repeat(200_000)
      const { file, options } = configTree({ "data/config/50-deep.json": deep, "data/config/60-broken.json": broken })
      const error = yield* Effect.flip(loadHostConfig(options))
      expect(error.file).toBe(file("data/config/50-deep.json"))
      expect(error.reason).toContain("nests deeper than 64 levels")
    }))
})
