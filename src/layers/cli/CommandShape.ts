/**
 * The shape of the `corral` command line, read from the @effect/cli declarations themselves (their
 * usages and subcommands, so it never drifts from them): which words are commands under which, and which options take a value. Usage
 * errors use it to name what the user typed (`UsageLine`).
 */
import type * as Usage from "@effect/cli/Usage"
import { Option } from "effect"
import type { CommandShape } from "./UsageLine.js"

/** The built-in options of @effect/cli that take a value. */
const builtInValuedOptions = ["--log-level", "--completions"]

/** Every option name in `usage` that takes a value. */
const valuedNames = (usage: Usage.Usage): ReadonlyArray<string> => {
  switch (usage._tag) {
    case "Named":
      return Option.isSome(usage.acceptedValues) ? usage.names.filter((name) => name.startsWith("-")) : []
    case "Optional":
    case "Repeated":
      return valuedNames(usage.usage)
    case "Alternation":
    case "Concat":
      return [...valuedNames(usage.left), ...valuedNames(usage.right)]
    case "Empty":
    case "Mixed":
      return []
  }
}

/** The shape of a CLI from `groups` (each command group's path and its subcommands' names) and every runnable command's usage. */
export const commandShape = (
  groups: ReadonlyArray<readonly [path: ReadonlyArray<string>, subcommands: ReadonlyArray<string>]>,
  usages: ReadonlyArray<Usage.Usage>
): CommandShape => ({
  subcommands: new Map(groups.map(([path, names]) => [path.join(" "), names])),
  valuedOptions: new Set([...builtInValuedOptions, ...usages.flatMap(valuedNames)])
})
