/**
 * Checks one fragment on its own against the encoded side of `HostConfig` with every field optional:
 * unknown fields (with a "did you mean") and wrong types are problems; missing fields are not,
 * because another fragment may set them.
 */
import { SchemaAST as AST } from "effect"
import { HostConfig } from "../../../services/host/HostConfig.js"
import type { ConfigPath, PathIssue } from "./ConfigProblem.js"
import { type PlaceholderScope, resolvePlaceholders } from "./ConfigPlaceholders.js"
import { accepts, describe, leafReason, quoteAll, show, showAt, unionMembers } from "./Expectations.js"
import { astKind, isPlainObject, jsonKind } from "./JsonShape.js"
import { closest } from "./NearestName.js"

/** The encoded side of `HostConfig` with its refinements: what a fragment may contain. */
const fragmentAst = AST.encodedBoundAST(HostConfig.ast)

/** A fragment's value with its placeholders resolved (undefined when it is not an object), and its problems. */
export const checkFragment = (
  value: unknown,
  scope: PlaceholderScope
): { readonly value: Record<string, unknown> | undefined; readonly issues: ReadonlyArray<PathIssue> } => {
  if (!isPlainObject(value)) {
    return { value: undefined, issues: [{ path: [], reason: `expected a JSON object, got ${showAt([], value)}` }] }
  }
  const issues: Array<PathIssue> = []
  const resolved = resolvePlaceholders(value, [], scope, issues)
  checkPartial(fragmentAst, resolved, [], issues)
  return { value: isPlainObject(resolved) ? resolved : undefined, issues }
}

/** Checks `value` against `ast` with every field optional; what does not fit goes to `issues`. */
const checkPartial = (ast: AST.AST, value: unknown, path: ConfigPath, issues: Array<PathIssue>): void => {
  switch (ast._tag) {
    case "Transformation":
      return checkPartial(ast.from, value, path, issues)
    case "UnknownKeyword":
    case "AnyKeyword":
      return
    case "Union": {
      const kind = jsonKind(value)
      const candidates = kind === "other" ? [] : unionMembers(ast).filter((member) => astKind(member) === kind)
      const [only] = candidates
      if (candidates.length === 1 && only !== undefined) return checkPartial(only, value, path, issues)
      break
    }
    case "TypeLiteral":
      return checkObject(ast, value, path, issues)
    case "TupleType": {
      const [rest] = ast.rest
      if (ast.elements.length > 0 || ast.rest.length !== 1 || rest === undefined) break
      if (!Array.isArray(value)) break
      const items: ReadonlyArray<unknown> = value
      items.forEach((item, index) => checkPartial(rest.type, item, [...path, index], issues))
      return
    }
  }
  if (!accepts(ast, value)) issues.push({ path, reason: leafReason(ast, value, path) })
}

const checkObject = (ast: AST.TypeLiteral, value: unknown, path: ConfigPath, issues: Array<PathIssue>): void => {
  if (!isPlainObject(value)) {
    issues.push({ path, reason: `expected ${describe(ast)}, got ${showAt(path, value)}` })
    return
  }
  for (const [key, item] of Object.entries(value)) {
    const property = ast.propertySignatures.find((signature) => signature.name === key)
    const index = ast.indexSignatures.find((signature) => accepts(signature.parameter, key))
    const [anyIndex] = ast.indexSignatures
    if (property !== undefined) checkPartial(property.type, item, [...path, key], issues)
    else if (index !== undefined) checkPartial(index.type, item, [...path, key], issues)
    else if (anyIndex !== undefined) {
      issues.push({ path: [...path, key], reason: `expected a key that is ${describe(anyIndex.parameter)}, got ${show(key)}` })
    } else {
      const known = ast.propertySignatures.map((signature) => String(signature.name))
      issues.push({ path: [...path, key], reason: unknownFieldReason(path, key, known) })
    }
  }
}

const unknownFieldReason = (at: ConfigPath, key: string, known: ReadonlyArray<string>): string => {
  const what = `${at.length === 0 ? "unknown top-level section" : "unknown field"} ${JSON.stringify(key)}`
  const near = closest(key, known)
  return near === undefined ? `${what}; expected one of ${quoteAll(known)}` : `${what}; did you mean ${JSON.stringify(near)}?`
}
