/**
 * A usage error as one line: what @effect/cli found wrong with the command line and what to type to
 * learn the right form (`corral logs --help`), instead of its multi-line help doc.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import type * as ValidationError from "@effect/cli/ValidationError"
import { plainText } from "./TerminalStyle.js"

/**
 * The command path the user typed (the leading words that are command names), for the `--help` hint.
 * `args` are the user's arguments, without `node` and the script.
 */
const commandPath = (args: ReadonlyArray<string>, commandNames: ReadonlySet<string>): ReadonlyArray<string> => {
  const path: Array<string> = []
  for (const arg of args) {
    if (!commandNames.has(arg)) break
    path.push(arg)
  }
  return path
}

/** One line: `corral: <what is wrong> (see 'corral <command> --help')`. */
export const usageLine = (error: ValidationError.ValidationError, args: ReadonlyArray<string>, commandNames: ReadonlySet<string>): string => {
  const what = plainText(HelpDoc.toAnsiText(error.error)).split("\n").map((line) => line.trim()).filter((line) => line.length > 0).join(" ")
  const help = ["corral", ...commandPath(args, commandNames), "--help"].join(" ")
  return `corral: ${what.length > 0 ? what : "invalid command line"} (see '${help}')`
}
