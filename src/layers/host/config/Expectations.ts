/**
 * What a config value must be, in words (`a positive integer`, `one of "none", "module-restricted"`),
 * read from the schema's AST, and why a given value does not fit.
 */
import { Either, Option, ParseResult, Schema, SchemaAST as AST } from "effect"
import { redactAt, redactedMarker } from "../../../services/host/Redaction.js"
import type { ConfigPath } from "./ConfigProblem.js"
import { closest } from "./NearestName.js"

/** A value as a short JSON snippet for a message: `nothing` for undefined, clipped at 60 characters. */
export const show = (value: unknown): string => {
  const text = value === undefined ? "nothing" : JSON.stringify(value) ?? String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** `value` for a message about `path`: never a secret (`API_TOKEN: expected a string, got <redacted>`). */
export const showAt = (path: ConfigPath, value: unknown): string => {
  const safe = redactAt(path, value)
  return safe === redactedMarker ? redactedMarker : show(safe)
}

/** Names as a JSON-quoted, comma-separated list. */
export const quoteAll = (names: ReadonlyArray<string>): string => names.map((name) => JSON.stringify(name)).join(", ")

/** A union's members, nested unions flattened, without `undefined` (which JSON cannot say). */
export const unionMembers = (ast: AST.Union): ReadonlyArray<AST.AST> =>
  ast.types.flatMap((member) =>
    AST.isUnion(member) ? unionMembers(member) : member._tag === "UndefinedKeyword" ? [] : [member]
  )

/** Whether `value` is a valid value of `ast`. */
export const accepts = (ast: AST.AST, value: unknown): boolean => Schema.is(Schema.make<unknown>(ast))(value)

const stringLiterals = (members: ReadonlyArray<AST.AST>): ReadonlyArray<string> =>
  members.flatMap((member) => (member._tag === "Literal" && typeof member.literal === "string" ? [member.literal] : []))

/** Why `value` (at `path`) does not fit `ast`: a refinement's own message when it has one, else what was expected. */
export const leafReason = (ast: AST.AST, value: unknown, path: ConfigPath): string => {
  if (AST.isUnion(ast)) {
    const members = unionMembers(ast)
    const [only] = members
    if (members.length === 1 && only !== undefined) return leafReason(only, value, path)
    const literals = stringLiterals(members)
    const near = typeof value === "string" && literals.length === members.length ? closest(value, literals) : undefined
    return `expected ${describe(ast)}, got ${showAt(path, value)}${near === undefined ? "" : `; did you mean ${JSON.stringify(near)}?`}`
  }
  const message = refinementMessage(ast, value)
  return `${message ?? `expected ${describe(ast)}`}, got ${showAt(path, value)}`
}

/** The custom message of the innermost refinement `value` fails, when that refinement has one. */
const refinementMessage = (ast: AST.AST, value: unknown): string | undefined => {
  if (ast._tag !== "Refinement") return undefined
  if (!accepts(ast.from, value)) return refinementMessage(ast.from, value)
  if (Option.isNone(AST.getMessageAnnotation(ast))) return undefined
  return Either.match(ParseResult.decodeUnknownEither(Schema.make<unknown>(ast))(value), {
    onLeft: (issue) => ParseResult.ArrayFormatter.formatIssueSync(issue)[0]?.message,
    onRight: () => undefined
  })
}

/** What a value must be, in words: `a positive integer`, `one of "none", "module-restricted"`. */
export const describe = (ast: AST.AST): string => {
  switch (ast._tag) {
    case "Literal":
      return typeof ast.literal === "string" ? JSON.stringify(ast.literal) : String(ast.literal)
    case "StringKeyword":
      return "a string"
    case "NumberKeyword":
      return "a number"
    case "BooleanKeyword":
      return "true or false"
    case "TypeLiteral":
      return "an object"
    case "TupleType": {
      const [rest] = ast.rest
      return ast.elements.length === 0 && rest !== undefined ? `an array (each item ${describe(rest.type)})` : "an array"
    }
    case "Union": {
      const members = unionMembers(ast)
      return members.length > 1 && stringLiterals(members).length === members.length
        ? `one of ${members.map(describe).join(", ")}`
        : members.map(describe).join(" or ")
    }
    case "Refinement":
      return describeRefinement(ast)
    case "Transformation":
      return describe(ast.from)
    default:
      return Option.getOrElse(AST.getDescriptionAnnotation(ast), () => String(ast))
  }
}

/** Reads the JSON Schema constraints along a refinement chain to name common shapes in words. */
const describeRefinement = (ast: AST.Refinement): string => {
  const constraints = new Map<string, unknown>()
  const descriptions: Array<string> = []
  let base: AST.AST = ast
  while (base._tag === "Refinement") {
    const annotated: ReadonlyArray<[string, unknown]> = Object.entries(
      Option.getOrElse(AST.getJSONSchemaAnnotation(base), () => ({}))
    )
    for (const [key, value] of annotated) {
      if (!constraints.has(key)) constraints.set(key, value)
    }
    const description = AST.getDescriptionAnnotation(base)
    if (Option.isSome(description)) descriptions.unshift(description.value)
    base = base.from
  }
  const keys = [...constraints.keys()].filter((key) => key !== "type").sort().join(",")
  const minimum = constraints.get("minimum")
  const maximum = constraints.get("maximum")
  if (base._tag === "NumberKeyword") {
    const noun = constraints.get("type") === "integer" ? "integer" : "number"
    const article = noun === "integer" ? "an" : "a"
    if (keys === "") return `${article} ${noun}`
    if (keys === "exclusiveMinimum" && constraints.get("exclusiveMinimum") === 0) return `a positive ${noun}`
    if (keys === "minimum" && minimum === 0) return `a non-negative ${noun}`
    if (keys === "maximum,minimum") return `${article} ${noun} between ${String(minimum)} and ${String(maximum)}`
  }
  if (base._tag === "StringKeyword") {
    if (keys === "minLength" && constraints.get("minLength") === 1) return "a non-empty string"
    if (keys === "pattern") return `a string matching ${String(constraints.get("pattern"))}`
  }
  return descriptions.length > 0 ? descriptions.join(" and ") : describe(base)
}
