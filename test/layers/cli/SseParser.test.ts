import { describe, expect, it } from "@effect/vitest"
import { makeSseParser } from "../../../src/layers/cli/SseParser.js"

describe("SseParser", () => {
  it("reads frames cut anywhere across chunks, skips comments, and keeps a frame open until its blank line", () => {
    const wire = ": connected\n\nid: 7\nevent: lifecycle\ndata: {\"a\":1}\n\nevent: gap\ndata: {\"missed_before\":3}\r\n\r\n: heartbeat\n\n"
    for (let cut = 0; cut <= wire.length; cut++) {
      const parser = makeSseParser()
      const frames = [...parser.feed(wire.slice(0, cut)), ...parser.feed(wire.slice(cut))]
      expect(frames, `cut at ${cut}`).toEqual([
        { id: "7", event: "lifecycle", data: "{\"a\":1}" },
        { id: undefined, event: "gap", data: "{\"missed_before\":3}" }
      ])
    }
    expect(makeSseParser().feed("id: 1\ndata: x\n")).toEqual([])
  })
})
