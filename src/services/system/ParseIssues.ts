/**
 * One renderer for decode failures: a `ParseResult.ParseError` becomes `path: reason` lines, with
 * paths written as config paths (`components["middleware.dator"].http.port`, `args[1]`). Pure.
 */
import { Array as Arr, Option, ParseResult, SchemaAST as AST } from "effect"

/** One problem of a failed decode: the JSON path it is at and what is wrong there. */
export interface ParseProblem {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/**
 * Renders a JSON path: `(root)`, dotted names, `["…"]` for keys that are not plain names (such as
 * component ids with dots) and `[n]` for array items, e.g. `components["middleware.dator"].http.port`.
 */
export const renderConfigPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.length === 0
    ? "(root)"
    : path
      .map((segment, index) =>
        typeof segment === "number"
          ? `[${segment}]`
          : typeof segment === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)
          ? `${index === 0 ? "" : "."}${segment}`
          : `[${JSON.stringify(String(segment))}]`
      )
      .join("")

/** A type mismatch that carries no message of its own, so it may be merged with its siblings. */
const plainType = (issue: ParseResult.ParseIssue): issue is ParseResult.Type =>
  issue._tag === "Type" && issue.message === undefined && Option.isNone(AST.getMessageAnnotation(issue.ast))

/**
 * Rewrites a union's failure: the `undefined` member of an optional field is dropped (JSON cannot
 * say it), a single remaining member stands for the union, and members that are all plain type
 * mismatches become one (`Expected "unix" | "tcp", actual "udp"`).
 */
const mergeUnion = (issue: ParseResult.Composite): ParseResult.ParseIssue => {
  const members = Arr.ensure(issue.issues).map(simplify)
  const meaningful = members.filter((member) => !(member._tag === "Type" && member.ast._tag === "UndefinedKeyword"))
  const [first, ...rest] = meaningful
  if (first === undefined) return new ParseResult.Composite(issue.ast, issue.actual, issue.issues, issue.output)
  if (rest.length === 0) return first
  if (plainType(first) && rest.every(plainType)) {
    return new ParseResult.Type(AST.Union.make([first.ast, ...rest.map((member) => member.ast)]), issue.actual)
  }
  return new ParseResult.Composite(issue.ast, issue.actual, [first, ...rest], issue.output)
}

/** The same issue tree with every union failure merged as `mergeUnion` says. */
const simplify = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Pointer":
      return new ParseResult.Pointer(issue.path, issue.actual, simplify(issue.issue))
    case "Refinement":
      return new ParseResult.Refinement(issue.ast, issue.actual, issue.kind, simplify(issue.issue))
    case "Transformation":
      return new ParseResult.Transformation(issue.ast, issue.actual, issue.kind, simplify(issue.issue))
    case "Composite": {
      if (AST.isUnion(issue.ast)) return mergeUnion(issue)
      const [first, ...rest] = Arr.ensure(issue.issues).map(simplify)
      return first === undefined ? issue : new ParseResult.Composite(issue.ast, issue.actual, [first, ...rest], issue.output)
    }
    default:
      return issue
  }
}

/**
 * The problems of a failed decode, in order, one per failed alternative set: a union that fails at
 * one path reads as one problem, and an optional field's `Expected undefined` is left out.
 */
export const parseProblems = (error: ParseResult.ParseError): ReadonlyArray<ParseProblem> =>
  ParseResult.ArrayFormatter.formatIssueSync(simplify(error.issue)).map(({ path, message }) => ({ path, message }))

/** `path: message`; a problem of the whole value is its message alone. */
export const renderParseProblem = (problem: ParseProblem): string =>
  problem.path.length === 0 ? problem.message : `${renderConfigPath(problem.path)}: ${problem.message}`

/** Every problem of a failed decode as a `path: message` line (see `parseProblems`). */
export const parseIssueLines = (error: ParseResult.ParseError): ReadonlyArray<string> =>
  parseProblems(error).map(renderParseProblem)
