import { describe, expect, it } from "@effect/vitest"
import { formatUptime } from "../../../src/layers/cli/StatusTable.js"
import { renderTable } from "../../../src/layers/cli/TextTable.js"

describe("status table text", () => {
  it("formats uptimes in their two largest units", () => {
    expect([0, 42_000, 307_000, 11_520_000, 187_200_000].map(formatUptime)).toEqual(["0s", "42s", "5m07s", "3h12m", "2d04h"])
  })

  it("pads columns, cuts only the last one to the width with …, and colours after padding", () => {
    const lines = renderTable(["ID", "NOTE"], [[{ text: "a" }, { text: "x".repeat(40), colour: "red" }]], { width: 20, colour: true })
    expect(lines[0]).toBe("ID  NOTE")
    expect(lines[1]).toBe(`a   \u001b[31m${"x".repeat(15)}…\u001b[0m`)
    expect(renderTable(["ID", "NOTE"], [[{ text: "a" }, { text: "x".repeat(40), colour: "red" }]], { width: undefined, colour: false })[1]).toBe(`a   ${"x".repeat(40)}`)
  })
})
