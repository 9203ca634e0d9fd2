import { describe, expect, it } from "vitest"
import { exceedsJsonDepth, maxJsonDepth } from "../../../src/services/system/JsonDepth.js"

const nested = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`

describe("exceedsJsonDepth", () => {
  it("allows exactly the documented 64 levels and refuses 65", () => {
    expect(maxJsonDepth).toBe(64)
    expect(exceedsJsonDepth(nested(64))).toBe(false)
    expect(exceedsJsonDepth(nested(65))).toBe(true)
    expect(exceedsJsonDepth(`{"a":${nested(63)}}`)).toBe(false)
    expect(exceedsJsonDepth(`{"a":${nested(64)}}`)).toBe(true)
  })

  it("measures 100,000 levels without recursion and stops at the first excess", () => {
    expect(exceedsJsonDepth(nested(100_000))).toBe(true)
    expect(exceedsJsonDepth("[".repeat(1_000_000))).toBe(true)
  })

  it("does not count brackets inside strings, escaped quotes included", () => {
    expect(exceedsJsonDepth(JSON.stringify({ text: "[".repeat(1_000) }))).toBe(false)
    expect(exceedsJsonDepth(JSON.stringify({ text: `\\"${"{".repeat(500)}"` }))).toBe(false)
    expect(exceedsJsonDepth(`["\\\\", ${nested(2)}]`, 2)).toBe(true)
  })

  it("counts siblings once: width is not depth", () => {
    expect(exceedsJsonDepth(`[${Array.from({ length: 1_000 }, () => nested(3)).join(",")}]`, 4)).toBe(false)
  })
})
