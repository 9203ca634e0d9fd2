/**
 * `--version` on a subcommand that has its own (`corral broker hello web --version 2.0.0`).
 * @effect/cli checks its built-in options (`--help`, `--version`, …) on every command before the
 * command's own, so the built-in would print Corral's version and exit 0. Only `corral --version`
 * keeps the built-in: on the commands listed here, `--version` is handed to the command's own option
 * under its short name before parsing.
 */

/** The short name of a command's own version option (`-V`); the built-in has none. */
export const ownVersionAlias = "V"

/** Command paths (after `corral`) whose own `--version` option must win over the built-in. */
const commandsWithOwnVersion: ReadonlyArray<ReadonlyArray<string>> = [["broker", "hello"]]

const startsWith = (args: ReadonlyArray<string>, path: ReadonlyArray<string>): boolean => path.every((word, index) => args[index] === word)

/**
 * `argv` (with `node` and the script first) with `--version V` / `--version=V` rewritten to `-V V` when the
 * command named is one with its own version option; any other command line is returned unchanged.
 */
export const routeVersionFlag = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const head = argv.slice(0, 2)
  const args = argv.slice(2)
  const owner = commandsWithOwnVersion.find((path) => startsWith(args, path))
  if (owner === undefined) return argv
  const rest = args.slice(owner.length).flatMap((arg) =>
    arg === "--version" ? [`-${ownVersionAlias}`] : arg.startsWith("--version=") ? [`-${ownVersionAlias}`, arg.slice("--version=".length)] : [arg]
  )
  return [...head, ...owner, ...rest]
}
