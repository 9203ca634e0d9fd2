import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { parseDuration, parseSince } from "../../../src/layers/cli/TraceCommand.js"

describe("trace --since", () => {
  const now = Date.parse("2026-01-31T12:00:00.000Z")

  it("reads a duration back from now, sums of units included (1h30m, as systemd writes them)", () => {
    expect(parseDuration("90s")).toEqual(Option.some(90_000))
    expect(parseDuration("1h30m")).toEqual(Option.some(5_400_000))
    expect(parseDuration(" 1.5h ")).toEqual(Option.some(5_400_000))
    expect(parseDuration("2d12h")).toEqual(Option.some(216_000_000))
    expect(parseSince("15m", now)).toEqual(Option.some(now - 900_000))
  })

  it("reads an ISO 8601 date or time", () => {
    expect(parseSince("2026-01-30", now)).toEqual(Option.some(Date.parse("2026-01-30T00:00:00.000Z")))
    expect(parseSince("2026-01-31T11:00:00Z", now)).toEqual(Option.some(now - 3_600_000))
  })

  it("refuses anything else rather than guessing", () => {
    for (const text of ["", "5", "-5m", "1H", "1x", "1h 30m", "m", "1h30", "yesterday", "2026-13-45", "12:00"]) {
      expect(parseSince(text, now), text).toEqual(Option.none())
    }
  })
})
