/**
 * `corral status` as a table: id, kind, phase (in colour on a terminal), pid, uptime (from
 * `started_at`), restarts used/left, and the last error on one line, cut to the terminal's width.
 */
import type { Phase } from "../../services/host/Component.js"
import type { Colour } from "./TerminalStyle.js"
import { type Cell, renderTable, type TableOptions } from "./TextTable.js"

/** What the table shows of a component. */
export interface StatusRow {
  readonly id: string
  readonly kind: string
  readonly phase: Phase
  readonly pid: number | null
  readonly started_at: string | null
  readonly restarts: { readonly used: number; readonly left: number }
  readonly last_error: string | null
}

const phaseColour: Readonly<Record<Phase, Colour>> = {
  configured: "grey",
  starting: "cyan",
  ready: "green",
  degraded: "yellow",
  stopping: "cyan",
  stopped: "grey",
  failed: "red"
}

/** `ms` as the two largest units: `42s`, `5m07s`, `3h12m`, `2d04h`. */
export const formatUptime = (ms: number): string => {
  const seconds = Math.max(Math.floor(ms / 1000), 0)
  const two = (n: number) => String(n).padStart(2, "0")
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${two(Math.floor(seconds / 60) % 60)}m`
  return `${Math.floor(seconds / 86_400)}d${two(Math.floor(seconds / 3600) % 24)}h`
}

const uptimeOf = (startedAt: string | null, now: number): string => {
  if (startedAt === null) return "-"
  const started = Date.parse(startedAt)
  return Number.isNaN(started) ? "-" : formatUptime(now - started)
}

/** A multi-line error (it may end with the module's stderr lines) as one line. */
const oneLine = (text: string): string => text.split("\n").map((line) => line.trim()).filter((line) => line.length > 0).join(" ⏎ ")

/** The status table's lines, for components at time `now` (epoch ms). */
export const renderStatusTable = (components: ReadonlyArray<StatusRow>, now: number, options: TableOptions): ReadonlyArray<string> =>
  renderTable(
    ["ID", "KIND", "PHASE", "PID", "UPTIME", "RESTARTS used/left", "LAST ERROR"],
    components.map((c): ReadonlyArray<Cell> => [
      { text: c.id },
      { text: c.kind },
      { text: c.phase, colour: phaseColour[c.phase] },
      { text: c.pid === null ? "-" : String(c.pid) },
      { text: uptimeOf(c.started_at, now) },
      { text: `${c.restarts.used}/${c.restarts.left}` },
      c.last_error === null ? { text: "-" } : { text: oneLine(c.last_error), colour: "red" }
    ]),
    options
  )
