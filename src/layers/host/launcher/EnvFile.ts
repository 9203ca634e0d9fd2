/**
 * `launch.env_file`: a file of `KEY=VALUE` lines read by the host at each launch and added to the
 * child's environment. Its values are secrets: no message here ever contains one (a bad line is named
 * by its number only). It must pass the file-trust rule, as what the component runs does: whoever can
 * write it sets the module's environment (`LD_PRELOAD`, `PYTHONPATH`...), so runs code as the module.
 */
import * as Fs from "node:fs"
import { Effect } from "effect"
import { errorText } from "../../../services/system/ErrorDetails.js"
import type { UntrustedFile } from "../../../services/system/FileTrust.js"
import { checkFileTrusted } from "../../system/FileTrust.js"

/** The largest env file read: far more than any environment needs, small enough to read at every launch. */
export const maxEnvFileBytes = 65_536

const keyPattern = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Strips one pair of matching surrounding quotes (`"…"` or `'…'`), as most env-file readers do. */
const unquote = (value: string): string =>
  value.length >= 2 && (value[0] === "\"" || value[0] === "'") && value.at(-1) === value[0] ? value.slice(1, -1) : value

/**
 * Parses `text`: blank lines and lines starting with `#` (after leading blanks) are skipped; every other
 * line is `KEY=VALUE` (an optional `export ` before KEY). Fails with `line N: <what is wrong>`.
 */
export const parseEnvFile = (text: string): { readonly env: Record<string, string> } | { readonly problem: string } => {
  const env: Record<string, string> = {}
  const lines = text.split("\n")
  for (const [index, raw] of lines.entries()) {
    const line = (raw.endsWith("\r") ? raw.slice(0, -1) : raw).trimStart()
    if (line === "" || line.startsWith("#")) continue
    const assignment = line.startsWith("export ") ? line.slice("export ".length).trimStart() : line
    const equals = assignment.indexOf("=")
    const key = equals < 0 ? "" : assignment.slice(0, equals).trimEnd()
    if (!keyPattern.test(key)) {
      return { problem: `line ${index + 1}: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit)` }
    }
    const value = unquote(assignment.slice(equals + 1))
    if (value.includes("\0")) return { problem: `line ${index + 1}: the value of ${key} contains a NUL byte` }
    env[key] = value
  }
  return { env }
}

/** Why an env file others could change is refused (at load, and at each launch). */
export const untrustedEnvFileReason = (untrusted: UntrustedFile): string =>
  `refusing an env file others could change (it sets the module's environment): ${untrusted.message}`

/**
 * Reads and parses the env file at `file` (an absolute path), once it is known to be a small regular file
 * that passes the file-trust rule; fails with a sentence naming the file, never a value.
 */
export const readEnvFile = (file: string): Effect.Effect<Record<string, string>, string> =>
  Effect.gen(function*() {
    const cannotRead = (error: unknown) => `launch.env_file ${file} cannot be read: ${errorText(error)}`
    const stat = yield* Effect.tryPromise({ try: () => Fs.promises.stat(file), catch: cannotRead })
    if (!stat.isFile()) return yield* Effect.fail(`launch.env_file ${file}: is not a regular file`)
    if (stat.size > maxEnvFileBytes) return yield* Effect.fail(`launch.env_file ${file}: is larger than ${maxEnvFileBytes} bytes`)
    yield* Effect.mapError(checkFileTrusted(file), (untrusted) => `launch.env_file: ${untrustedEnvFileReason(untrusted)}`)
    const parsed = parseEnvFile(yield* Effect.tryPromise({ try: () => Fs.promises.readFile(file, "utf8"), catch: cannotRead }))
    return "env" in parsed ? parsed.env : yield* Effect.fail(`launch.env_file ${file}: ${parsed.problem}`)
  })
