/**
 * Parses a fragment's JSON text; a syntax error names its line and column, found from the offset
 * the parser reports or, for messages without one, from a small scan of the text.
 */
import { Either } from "effect"
import { errorText } from "../../../services/system/ErrorDetails.js"

/**
 * V8 quotes the text around an unexpected token (`Unexpected token 's', ..."I_TOKEN": s3cretvalu"... is not
 * valid JSON`): a value missing its quotes is often a secret, so the quote is left out; line and column say where.
 */
const withoutQuotedText = (message: string): string => message.replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, "")

/** The parsed value, or `invalid JSON: <parser message> (line L, column C)`, never quoting the text. */
export const parseJson = (text: string): Either.Either<unknown, string> => {
  // Editors on some systems save a byte-order mark, which JSON.parse rejects.
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text
  try {
    const value: unknown = JSON.parse(body)
    return Either.right(value)
  } catch (error) {
    const message = withoutQuotedText(errorText(error))
    const reported = /at position (\d+)/.exec(message)?.[1]
    const offset = reported === undefined ? syntaxErrorOffset(body) : Number(reported)
    const before = body.slice(0, offset)
    const line = before.split("\n").length
    const column = offset - before.lastIndexOf("\n")
    return Either.left(`invalid JSON: ${message} (line ${line}, column ${column})`)
  }
}

const stringToken = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y
const numberToken = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const literalToken = /true|false|null/y

/** Offset of the first syntax error in `text`, for the parser messages that carry no position. */
const syntaxErrorOffset = (text: string): number => {
  let at = 0
  const skipSpace = () => {
    while (" \t\n\r".includes(text.charAt(at)) && at < text.length) at++
  }
  const token = (pattern: RegExp): boolean => {
    pattern.lastIndex = at
    const match = pattern.exec(text)
    if (match !== null) at += match[0].length
    return match !== null
  }
  const sequence = (close: string, item: () => boolean): boolean => {
    at++
    skipSpace()
    if (text.charAt(at) === close) return (at++, true)
    for (;;) {
      if (!item()) return false
      skipSpace()
      const next = text.charAt(at)
      if (next === close) return (at++, true)
      if (next !== ",") return false
      at++
    }
  }
  const member = (): boolean => {
    skipSpace()
    if (!token(stringToken)) return false
    skipSpace()
    if (text.charAt(at) !== ":") return false
    at++
    return value()
  }
  const value = (): boolean => {
    skipSpace()
    const next = text.charAt(at)
    if (next === "{") return sequence("}", member)
    if (next === "[") return sequence("]", value)
    if (next === "\"") return token(stringToken)
    return token(numberToken) || token(literalToken)
  }
  if (value()) skipSpace()
  return at
}
