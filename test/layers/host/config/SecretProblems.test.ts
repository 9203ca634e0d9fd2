/**
 * Config problems never quote a secret: `config check`, a refused start and a refused reload all print
 * them, and a reload's problems also go out on the event feed. A value under a secret-looking key is
 * `<redacted>`, and a JSON syntax error names its line and column without quoting the text around it.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { validateAll } from "../../../../src/layers/host/config/ConfigLoader.js"
import { configTree, removeConfigTrees } from "./configTree.js"

afterEach(removeConfigTrees)

const component = (env: unknown) => ({
  components: { "middleware.x": { kind: "http_local_json", launch: { executable: "/bin/true", env }, http: { port: "auto" } } }
})

describe("config problems and secrets", () => {
  it.effect("a wrong type under a secret-looking key says what was expected and shows <redacted>, not the value", () =>
    Effect.gen(function*() {
      const tree = configTree({
        "data/config/50-ops.json": component({ API_TOKEN: 987654321, DB_PASSWORD: { value: "hunter2-s3cret" }, LOG_LEVEL: 3 })
      })
      const problems = (yield* validateAll(tree.options)).map((error) => `${error.path}: ${error.reason}`)
      expect(problems).toEqual([
        "components[\"middleware.x\"].launch.env.API_TOKEN: expected a string, got <redacted>",
        "components[\"middleware.x\"].launch.env.DB_PASSWORD: expected a string, got <redacted>",
        "components[\"middleware.x\"].launch.env.LOG_LEVEL: expected a string, got 3"
      ])
    }))

  it.effect("a secret value missing its quotes is a JSON syntax error that points at it without quoting it", () =>
    Effect.gen(function*() {
      const tree = configTree({
        "data/config/50-ops.json": "{\"components\": {\"middleware.x\": {\"launch\": {\"env\": {\"API_TOKEN\": s3cretvalue}}}}}"
      })
      const [problem] = yield* validateAll(tree.options)
      expect(problem?.reason).toBe("invalid JSON: Unexpected token 's' (line 1, column 66)")
      expect(problem?.message).not.toContain("s3cret")
    }))
})
