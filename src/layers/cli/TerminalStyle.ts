/**
 * Colour at the terminal: only when the stream is a terminal and `NO_COLOR` is not set
 * (https://no-color.org). The console @effect/cli prints through is wrapped so its help loses its
 * escape codes under the same rule, and its multi-line error docs are left to `UsageLine`.
 */
import * as Util from "node:util"
import { Effect } from "effect"
import type { Console } from "effect"

/** Whether `stream` may get ANSI colour: it is a terminal and `NO_COLOR` is unset or empty. */
export const colourEnabled = (stream: { readonly isTTY?: boolean }): boolean =>
  stream.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

/** `text` without ANSI escape sequences. */
export const plainText = (text: string): string => Util.stripVTControlCharacters(text)

/** The colours the CLI uses (SGR codes). */
export type Colour = "green" | "yellow" | "red" | "grey" | "cyan"

const sgr: Readonly<Record<Colour, string>> = { green: "32", yellow: "33", red: "31", grey: "90", cyan: "36" }

/** `text` in `colour` when `enabled`, else unchanged. */
export const paint = (text: string, colour: Colour, enabled: boolean): string =>
  enabled ? `\u001b[${sgr[colour]}m${text}\u001b[0m` : text

/**
 * The console @effect/cli writes to: `log` (help, version) without escape codes unless stdout may
 * have colour; `error` silent, because the library's only use of it is the multi-line doc it prints
 * before failing with a `ValidationError`, which the CLI turns into one line itself. Corral's own
 * output and logs do not go through `Console`.
 */
export const cliConsole = (base: Console.Console): Console.Console => {
  const colour = colourEnabled(process.stdout)
  return {
    ...base,
    log: (...args: ReadonlyArray<unknown>) => base.log(...args.map((arg) => typeof arg === "string" && !colour ? plainText(arg) : arg)),
    error: () => Effect.void
  }
}
