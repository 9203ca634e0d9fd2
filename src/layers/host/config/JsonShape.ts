/**
 * The coarse shape of a JSON value (object, array or other) and of what a schema node accepts:
 * how the loader picks the one union member that a value's shape selects.
 */
import { SchemaAST as AST } from "effect"

/** A JSON object (not an array, not null). */
export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The coarse shape of a JSON value. */
export type JsonKind = "object" | "array" | "other"

/** The shape of `value`. */
export const jsonKind = (value: unknown): JsonKind => (Array.isArray(value) ? "array" : isPlainObject(value) ? "object" : "other")

/** The shape of the values `ast` accepts, looking through refinements and transformations. */
export const astKind = (ast: AST.AST): JsonKind => {
  switch (ast._tag) {
    case "TypeLiteral":
      return "object"
    case "TupleType":
      return "array"
    case "Refinement":
    case "Transformation":
      return astKind(ast.from)
    default:
      return "other"
  }
}
