/**
 * Plain text tables for the terminal: columns padded to their widest cell, the last column cut with
 * `…` to fit the terminal width, colour applied after padding (so escape codes never skew alignment).
 */
import { type Colour, paint } from "./TerminalStyle.js"

/** One cell: its text (one line) and an optional colour. */
export interface Cell {
  readonly text: string
  readonly colour?: Colour
}

/** How to render. */
export interface TableOptions {
  /** Terminal width; undefined: no limit (output piped to a file keeps every character). */
  readonly width: number | undefined
  readonly colour: boolean
}

const gap = "  "

/** Cuts `text` to `width` characters, ending with `…` when something was cut. */
export const truncate = (text: string, width: number): string =>
  text.length <= width ? text : width <= 1 ? text.slice(0, Math.max(width, 0)) : `${text.slice(0, width - 1)}…`

/** The table as lines: a header row, then one row per entry. */
export const renderTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<Cell>>, options: TableOptions): ReadonlyArray<string> => {
  const all: ReadonlyArray<ReadonlyArray<Cell>> = [headers.map((text) => ({ text })), ...rows]
  const widths = headers.map((_, column) => Math.max(...all.map((row) => row[column]?.text.length ?? 0)))
  const fixed = widths.slice(0, -1).reduce((sum, width) => sum + width + gap.length, 0)
  // The last column (the free text) gets what is left, but never less than a readable 12 characters.
  const lastWidth = options.width === undefined ? Number.POSITIVE_INFINITY : Math.max(options.width - fixed, 12)
  return all.map((row, index) =>
    row.map((cell, column) => {
      const last = column === row.length - 1
      const text = last ? truncate(cell.text, lastWidth) : cell.text.padEnd(widths[column] ?? 0)
      return index === 0 || cell.colour === undefined ? text : paint(text, cell.colour, options.colour)
    }).join(gap).trimEnd()
  )
}
