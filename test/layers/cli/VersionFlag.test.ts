import { describe, expect, it } from "@effect/vitest"
import { routeVersionFlag } from "../../../src/layers/cli/VersionFlag.js"

describe("routeVersionFlag", () => {
  it("hands --version to broker hello's own option and leaves every other command line alone", () => {
    expect(routeVersionFlag(["node", "corral", "broker", "hello", "web", "--version", "2.0.0"])).toEqual(["node", "corral", "broker", "hello", "web", "-V", "2.0.0"])
    expect(routeVersionFlag(["node", "corral", "broker", "hello", "web", "--version=2.0.0"])).toEqual(["node", "corral", "broker", "hello", "web", "-V", "2.0.0"])
    expect(routeVersionFlag(["node", "corral", "--version"])).toEqual(["node", "corral", "--version"])
    expect(routeVersionFlag(["node", "corral", "status", "--version"])).toEqual(["node", "corral", "status", "--version"])
  })
})
