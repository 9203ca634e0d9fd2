/**
 * Redaction of secret-looking values in every view of the config (`corral config show`, `GET /v1/config`,
 * the status page): a value whose key reads like a secret (`API_KEY`, `dbPassword`, `auth_token`...) is
 * replaced by a marker, wherever it sits; the same goes for a value quoted in a message about a config
 * path (`config check`, reload problems). `launch.env_file` contents are never read into a view at all.
 */

/** What a redacted value reads as. */
export const redactedMarker = "<redacted>"

const secretWords: ReadonlySet<string> = new Set([
  "secret", "secrets", "token", "tokens", "password", "passwords", "passwd", "pwd", "passphrase", "key", "apikey",
  "credential", "credentials", "auth", "authorization", "cookie", "private", "session", "signature", "dsn", "bearer"
])

/** The words of a key: split at `_`, `-`, `.`, spaces and lower-to-upper case changes, lower-cased. */
const keyWords = (key: string): ReadonlyArray<string> =>
  key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").split(/[\s_.-]+/).filter((word) => word.length > 0).map((word) => word.toLowerCase())

/** Whether a key names something secret (`API_KEY`, `dbPassword`), by its words: `keep` or `monkey` do not. */
export const isSecretKey = (key: string): boolean => keyWords(key).some((word) => secretWords.has(word))

/** A deep copy of `value` with the value under every secret-looking key replaced by `redactedMarker`. */
export const redactSecrets = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(redactSecrets)
  if (typeof value !== "object" || value === null) return value
  const copy: Record<string, unknown> = {}
  for (const [key, inner] of Object.entries(value)) {
    copy[key] = isSecretKey(key) && (typeof inner === "string" || typeof inner === "number") ? redactedMarker : redactSecrets(inner)
  }
  return copy
}

/**
 * `value` as a message about the config at `path` may quote it: `redactedMarker` when a key on the path
 * reads like a secret (a boolean or null holds none), else with every secret inside it redacted.
 */
export const redactAt = (path: ReadonlyArray<string | number>, value: unknown): unknown =>
  path.some((segment) => typeof segment === "string" && isSecretKey(segment)) && typeof value !== "boolean" && value != null
    ? redactedMarker
    : redactSecrets(value)
