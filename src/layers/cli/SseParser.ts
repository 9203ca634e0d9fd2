/**
 * An incremental reader of `text/event-stream` (the parts of the WHATWG format the control API sends):
 * `id:`, `event:` and `data:` fields, frames ended by a blank line, `:` comments skipped.
 */

/** One server-sent event. */
export interface SseFrame {
  readonly id: string | undefined
  readonly event: string
  readonly data: string
}

/** Feeds chunks, returns the frames they completed; partial lines and frames wait for the next chunk. */
export interface SseParser {
  readonly feed: (chunk: string) => ReadonlyArray<SseFrame>
}

/** A parser with no input yet. */
export const makeSseParser = (): SseParser => {
  let pending = ""
  let id: string | undefined
  let event = ""
  let data: Array<string> = []
  const feed = (chunk: string): ReadonlyArray<SseFrame> => {
    pending += chunk
    // Split at "\n" only, so a "\r\n" cut between two chunks is not read as two line ends.
    const lines = pending.split("\n").map((line) => line.replace(/\r$/, ""))
    pending = lines.pop() ?? ""
    const frames: Array<SseFrame> = []
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0 || event !== "") frames.push({ id, event: event === "" ? "message" : event, data: data.join("\n") })
        id = undefined
        event = ""
        data = []
        continue
      }
      if (line.startsWith(":")) continue
      const colon = line.indexOf(":")
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "id") id = value
      else if (field === "event") event = value
      else if (field === "data") data.push(value)
    }
    return frames
  }
  return { feed }
}
