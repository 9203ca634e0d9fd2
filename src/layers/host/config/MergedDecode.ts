/**
 * Decodes the merged config with `HostConfig` (every error, unknown fields refused) and turns a
 * failure into problems blamed, through provenance, on the fragment that set each path.
 */
import { Array as Arr, Either, ParseResult, Schema, SchemaAST as AST } from "effect"
import { HostConfig } from "../../../services/host/HostConfig.js"
import type { ConfigPath, ConfigProblem, PathIssue } from "./ConfigProblem.js"
import { leafReason } from "./Expectations.js"
import { astKind, type JsonKind, jsonKind } from "./JsonShape.js"
import { blame, type Provenance } from "./Provenance.js"

const decodeHostConfig = Schema.decodeUnknownEither(HostConfig, { errors: "all", onExcessProperty: "error" })

/** The decoded config, or every problem of the merged value, each blamed on a source. */
export const decodeMerged = (
  merged: Record<string, unknown>,
  provenance: Provenance
): Either.Either<HostConfig, ReadonlyArray<ConfigProblem>> =>
  Either.mapLeft(decodeHostConfig(merged), (error) => {
    const issues: Array<PathIssue> = []
    collectIssues(error.issue, [], issues)
    return issues.map((issue) => ({ file: blame(provenance, issue.path), ...issue }))
  })

const issueKind = (issue: ParseResult.ParseIssue): JsonKind => {
  switch (issue._tag) {
    case "Type":
    case "Refinement":
    case "Transformation":
    case "Composite":
      return astKind(issue.ast)
    default:
      return "other"
  }
}

/** Flattens a decode failure into path + reason pairs, following only the union member the value's shape selects. */
const collectIssues = (issue: ParseResult.ParseIssue, path: ConfigPath, issues: Array<PathIssue>): void => {
  switch (issue._tag) {
    case "Pointer": {
      const segments = Arr.ensure(issue.path).map((key) => (typeof key === "number" ? key : String(key)))
      return collectIssues(issue.issue, [...path, ...segments], issues)
    }
    case "Transformation":
      return collectIssues(issue.issue, path, issues)
    case "Refinement":
      if (issue.kind === "From") return collectIssues(issue.issue, path, issues)
      issues.push({ path, reason: leafReason(issue.ast, issue.actual, path) })
      return
    case "Composite": {
      const members = Arr.ensure(issue.issues)
      if (!AST.isUnion(issue.ast)) return members.forEach((member) => collectIssues(member, path, issues))
      const kind = jsonKind(issue.actual)
      const selected = kind === "other" ? [] : members.filter((member) => issueKind(member) === kind)
      const [only] = selected
      if (selected.length === 1 && only !== undefined) return collectIssues(only, path, issues)
      issues.push({ path, reason: leafReason(issue.ast, issue.actual, path) })
      return
    }
    case "Type":
      issues.push({ path, reason: leafReason(issue.ast, issue.actual, path) })
      return
    case "Missing":
      issues.push({ path, reason: "is required, and no fragment sets it" })
      return
    case "Unexpected":
      issues.push({ path, reason: "unknown field" })
      return
    case "Forbidden":
      issues.push({ path, reason: issue.message ?? "cannot be decoded" })
      return
  }
}
