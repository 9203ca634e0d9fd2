/**
 * JSON nesting depth, counted in one pass over the text without parsing and without recursion.
 * `JSON.parse` takes 100,000 nested arrays in its stride, but everything after it that walks the value
 * (`JSON.stringify` toward a module, Schema decoding, the traces) recurses and dies with a stack
 * overflow; so a body is measured before it is parsed, and refused past the limit.
 */

/** The deepest nesting of arrays and objects the host and the bundled modules' SDK accept (documented). */
export const maxJsonDepth = 64

const quote = 0x22
const backslash = 0x5c
const openBracket = 0x5b
const openBrace = 0x7b
const closeBracket = 0x5d
const closeBrace = 0x7d

/**
 * Whether `text` nests arrays and objects deeper than `limit` (brackets inside strings do not count).
 * Stops at the first level past the limit; malformed JSON is left for the parser to report.
 */
export const exceedsJsonDepth = (text: string, limit: number = maxJsonDepth): boolean => {
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (inString) {
      if (code === backslash) index++
      else if (code === quote) inString = false
    } else if (code === quote) {
      inString = true
    } else if (code === openBracket || code === openBrace) {
      depth++
      if (depth > limit) return true
    } else if (code === closeBracket || code === closeBrace) {
      depth--
    }
  }
  return false
}
