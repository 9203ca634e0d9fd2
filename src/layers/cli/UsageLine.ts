/**
 * A usage error as one line: what is wrong with the command line and what to type to learn the right
 * form (`corral logs --help`), instead of @effect/cli's multi-line help doc. Where the library's words
 * mislead, the line says what happened instead: an option given without its value ("--since needs a
 * value", not "unknown argument '--since'"), a bad value named with its option ("-n takes an integer,
 * got 'abc'"), an unknown word under a command group (the group's own commands, not the top level's).
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import type * as ValidationError from "@effect/cli/ValidationError"
import { plainText } from "./TerminalStyle.js"

/** What the CLI's command line may hold: each command path's subcommands and the options that take a value. */
export interface CommandShape {
  /** Subcommand names by command path (words joined by spaces; "" is `corral` itself). */
  readonly subcommands: ReadonlyMap<string, ReadonlyArray<string>>
  /** Every option name that takes a value (`--data-dir`, `-n`, …), the built-in ones included. */
  readonly valuedOptions: ReadonlySet<string>
}

/** Where the user's words lead: the command path they name, and the first word that names no command there. */
interface Walk {
  readonly path: ReadonlyArray<string>
  readonly stray: string | undefined
}

/** Follows `args` (without `node` and the script) down the command tree, skipping options and their values. */
const walk = (args: ReadonlyArray<string>, shape: CommandShape): Walk => {
  const path: Array<string> = []
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? ""
    if (arg.startsWith("-")) {
      if (shape.valuedOptions.has(arg)) index += 1
      continue
    }
    const children = shape.subcommands.get(path.join(" ")) ?? []
    if (!children.includes(arg)) return { path, stray: children.length > 0 ? arg : undefined }
    path.push(arg)
  }
  return { path, stray: undefined }
}

/**
 * Edit distance with adjacent transpositions counted as one edit (`stauts` is one from `status`), for
 * "did you mean"; command names are short, so the quadratic cost is nothing.
 */
const distance = (a: string, b: string): number => {
  const rows: Array<Array<number>> = [Array.from({ length: b.length + 1 }, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const at = (r: number, c: number) => rows[r]?.[c] ?? 0
      let best = Math.min(at(i - 1, j) + 1, (row[j - 1] ?? 0) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      row.push(best)
    }
    rows.push(row)
  }
  return rows[a.length]?.[b.length] ?? 0
}

/** The closest command name within two edits, if any. */
const closest = (word: string, names: ReadonlyArray<string>): string | undefined => {
  const ranked = names.map((name) => ({ name, d: distance(word.toLowerCase(), name) })).filter((n) => n.d <= 2).sort((x, y) => x.d - y.d)
  return ranked[0]?.name
}

const unknownArgument = /^Received unknown argument: '(.*)'$/
const badValue = /^'(.*)' is not an? (.+)$/
const invalidSubcommand = /^Invalid subcommand\b/

/** What is wrong, in words that name the user's own tokens. */
const diagnosis = (library: string, args: ReadonlyArray<string>, shape: CommandShape, at: Walk): string => {
  if (at.stray !== undefined && invalidSubcommand.test(library)) {
    const names = [...(shape.subcommands.get(at.path.join(" ")) ?? [])].sort()
    const suggestion = closest(at.stray, names)
    const where = ["corral", ...at.path].join(" ")
    return `'${at.stray}' is not a command of ${where}${suggestion === undefined ? "" : `; did you mean '${suggestion}'?`} (commands: ${names.join(", ")})`
  }
  const unknown = unknownArgument.exec(library)
  if (unknown?.[1] !== undefined && shape.valuedOptions.has(unknown[1])) {
    const next = args[args.indexOf(unknown[1]) + 1]
    if (next === undefined || next.startsWith("-")) return `${unknown[1]} needs a value`
  }
  const bad = badValue.exec(library)
  if (bad?.[1] !== undefined && bad[2] !== undefined) {
    const option = args.find((arg, index) => arg.startsWith("-") && (args[index + 1] === bad[1] || arg.endsWith(`=${bad[1]}`)))
    const name = option?.split("=")[0]
    if (name !== undefined) return `${name} takes ${/^[aeiou]/.test(bad[2]) ? "an" : "a"} ${bad[2]}, got '${bad[1]}'`
  }
  return library.length > 0 ? library : "invalid command line"
}

/** One line: `corral: <what is wrong> (see 'corral <command> --help')`. `args` are the user's arguments, without `node` and the script. */
export const usageLine = (error: ValidationError.ValidationError, args: ReadonlyArray<string>, shape: CommandShape): string => {
  const library = plainText(HelpDoc.toAnsiText(error.error)).split("\n").map((line) => line.trim()).filter((line) => line.length > 0).join(" ")
  const at = walk(args, shape)
  const help = ["corral", ...at.path, "--help"].join(" ")
  return `corral: ${diagnosis(library, args, shape, at)} (see '${help}')`
}

/** The line for a command group typed without one of its commands (`corral config`). */
export const missingSubcommandLine = (path: ReadonlyArray<string>, names: ReadonlyArray<string>): string =>
  `corral: ${path.join(" ")} needs a command: ${names.join(", ")} (see '${["corral", ...path, "--help"].join(" ")}')`
