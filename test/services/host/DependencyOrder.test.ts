import { describe, expect, it } from "@effect/vitest"
import { dependencyProblems, startWaves } from "../../../src/services/host/DependencyOrder.js"

const graph = (edges: Readonly<Record<string, ReadonlyArray<string>>>) =>
  Object.fromEntries(Object.entries(edges).map(([id, deps]) => [id, { depends_on: deps }]))

describe("dependency order", () => {
  it("puts every component in a wave after all its dependencies, keeping the given order within a wave", () => {
    expect(startWaves(graph({ web: ["db", "cache"], db: [], cache: ["db"], solo: [] }))).toEqual([["db", "solo"], ["cache"], ["web"]])
    expect(startWaves(graph({}))).toEqual([])
  })

  it("ignores dependencies outside the set (they are someone else's to start)", () => {
    expect(startWaves(graph({ web: ["db"], api: [] }))).toEqual([["web", "api"]])
  })

  it("keeps the ids of a cycle (in a last wave) rather than losing them", () => {
    const waves = startWaves(graph({ a: ["b"], b: ["a"], c: [] }))
    expect(waves.flat().sort()).toEqual(["a", "b", "c"])
    expect(waves[0]).toEqual(["c"])
  })

  it("reports unknown ids at their index and each cycle once, in path order", () => {
    expect(dependencyProblems(graph({ a: ["b"], b: ["zz", "c"], c: ["a"] }))).toEqual([
      { _tag: "Unknown", component: "b", index: 0, missing: "zz" },
      { _tag: "Cycle", component: "c", index: 0, cycle: ["a", "b", "c", "a"] }
    ])
    expect(dependencyProblems(graph({ self: ["self"] }))).toEqual([{ _tag: "Cycle", component: "self", index: 0, cycle: ["self", "self"] }])
    expect(dependencyProblems(graph({ web: ["db"], db: [] }))).toEqual([])
  })
})
