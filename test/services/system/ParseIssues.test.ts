import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { parseIssueLines, parseProblems, renderConfigPath } from "../../../src/services/system/ParseIssues.js"

/** The lines for decoding `value` with every error reported and unknown fields refused. */
const linesOf = <A, I>(schema: Schema.Schema<A, I>, value: unknown): ReadonlyArray<string> =>
  Either.match(Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(value), {
    onLeft: parseIssueLines,
    onRight: () => []
  })

describe("parseIssueLines", () => {
  it("merges a union whose members all fail on type into one line naming every alternative", () => {
    const Endpoint = Schema.Struct({ kind: Schema.Literal("unix", "tcp") })
    expect(linesOf(Endpoint, { kind: "udp" })).toEqual([`kind: Expected "unix" | "tcp", actual "udp"`])
  })

  it("leaves out the undefined alternative of an optional field, which JSON cannot express", () => {
    const Limits = Schema.Struct({
      timeout_ms: Schema.optional(Schema.Int.pipe(Schema.positive())),
      profile: Schema.optional(Schema.Literal("none", "strict"))
    })
    expect(linesOf(Limits, { timeout_ms: 0, profile: "loose" })).toEqual([
      "timeout_ms: Expected a positive number, actual 0",
      `profile: Expected "none" | "strict", actual "loose"`
    ])
  })

  it("keeps a refinement's own message and writes a problem of the whole value without a path", () => {
    const Decision = Schema.Struct({ decision: Schema.String, payload: Schema.optional(Schema.Unknown) }).pipe(
      Schema.filter((value) => value.decision !== "modify" || value.payload !== undefined || "a modify decision needs a payload")
    )
    expect(linesOf(Decision, { decision: "modify" })).toEqual(["a modify decision needs a payload"])
  })

  it("renders paths as config paths: array items in brackets, keys that are not plain names quoted", () => {
    const Launch = Schema.Struct({
      args: Schema.Array(Schema.String),
      env: Schema.Record({ key: Schema.String, value: Schema.String })
    })
    expect(linesOf(Launch, { args: ["--port", 1], env: { "a.b": 2 }, extra: true })).toEqual([
      `extra: is unexpected, expected: "args" | "env"`,
      "args[1]: Expected string, actual 1",
      `env["a.b"]: Expected string, actual 2`
    ])
  })

  it("keeps the path of each problem as segments", () => {
    const decoded = Schema.decodeUnknownEither(Schema.Struct({ hooks: Schema.Array(Schema.String) }))({ hooks: ["a", 3] })
    expect(Either.isLeft(decoded) && parseProblems(decoded.left)).toEqual([{ path: ["hooks", 1], message: "Expected string, actual 3" }])
  })
})

describe("renderConfigPath", () => {
  it("writes the root, dotted names, quoted keys and array indices", () => {
    expect(renderConfigPath([])).toBe("(root)")
    expect(renderConfigPath(["components", "middleware.dator", "http", "port"])).toBe(`components["middleware.dator"].http.port`)
    expect(renderConfigPath(["hooks", "ingress", 1])).toBe("hooks.ingress[1]")
  })
})
