/**
 * The layered config loader: factory fragments (`<modulesDir>/<m>/config/*.json`), then the host's
 * defaults, then operator fragments (`<dataDir>/config/*.json`), each checked on its own, deep-merged
 * with provenance, decoded with `HostConfig` and cross-checked. It reads files and never writes any.
 */
import * as Fs from "node:fs/promises"
import * as NodePath from "node:path"
import { Array as Arr, Effect, Either, Option, ParseResult, Schema, SchemaAST as AST } from "effect"
import { type ComponentConfig, ConfigError, HostConfig } from "../../services/host/HostConfig.js"
import { errorCode, errorText } from "../../services/system/ErrorDetails.js"
import { renderConfigPath } from "../../services/host/HostConfig.js"

/** Where the fragments come from. */
export interface ConfigLoadOptions {
  /** Holds one directory per bundled module; its `config/*.json` are the factory fragments. */
  readonly modulesDir: string
  /** The host's data directory; its `config/*.json` are the operator fragments. */
  readonly dataDir: string
  /** The host's own defaults fragment, merged between factory and operator fragments. */
  readonly hostDefaults?: unknown
}

/** A decoded effective config and where each of its values came from. */
export interface LoadedConfig {
  readonly config: HostConfig
  /** Every fragment's source, in merge order: absolute file paths and `hostDefaultsSource`. */
  readonly sources: ReadonlyArray<string>
  /** The source that last set a path (as `renderConfigPath` writes it); undefined for schema defaults. */
  readonly provenance: (path: string) => string | undefined
}

/** The source name of the host's defaults fragment in errors, `sources` and provenance. */
export const hostDefaultsSource = "(host defaults)"

/** The source named by problems that no fragment's path can be blamed for. */
export const mergedConfigSource = "(merged config)"

type Segment = string | number
type Path = ReadonlyArray<Segment>

/** Re-exported: config paths are rendered the same everywhere. */
export { renderConfigPath }


/**
 * Loads the effective config; fails with the first problem (its reason says how many more there are).
 * Missing directories contribute no fragments; files not ending in `.json` are ignored.
 */
export const loadHostConfig = (options: ConfigLoadOptions): Effect.Effect<LoadedConfig, ConfigError> =>
  checkConfig(options).pipe(Effect.mapError(firstWithCount))

/** Every problem of the config, in merge order; empty when it loads. For `corral config check`-style use. */
export const validateAll = (options: ConfigLoadOptions): Effect.Effect<ReadonlyArray<ConfigError>> =>
  checkConfig(options).pipe(Effect.match({ onFailure: (problems) => problems, onSuccess: () => [] }))

/** Pretty JSON of the resolved config, with host-owned runtime facts under `runtime` when given. */
export const renderEffectiveConfig = (loaded: LoadedConfig, runtime?: unknown): string =>
  JSON.stringify(runtime === undefined ? loaded.config : { ...loaded.config, runtime }, null, 2)

interface Problem {
  readonly file: string
  readonly path: Path
  readonly reason: string
}

type PathIssue = Omit<Problem, "file">

interface Fragment {
  readonly source: string
  readonly value: Record<string, unknown>
}

const toConfigError = (problem: Problem): ConfigError =>
  new ConfigError({ file: problem.file, path: renderConfigPath(problem.path), reason: problem.reason })

const firstWithCount = (problems: readonly [ConfigError, ...Array<ConfigError>]): ConfigError => {
  const [first] = problems
  const more = problems.length - 1
  return more === 0
    ? first
    : new ConfigError({ ...first, reason: `${first.reason} (and ${more} more problem${more === 1 ? "" : "s"})` })
}

/**
 * Problems are reported stage by stage: files that cannot be read or checked on their own hide the
 * problems of the merged config (which they would only repeat or distort), and a merged config that
 * does not decode hides the cross-checks.
 */
const checkConfig = (
  options: ConfigLoadOptions
): Effect.Effect<LoadedConfig, readonly [ConfigError, ...Array<ConfigError>]> =>
  readFragments(options).pipe(
    Effect.flatMap(({ fragments, problems }) => {
      const result = problems.length > 0 ? Either.left(problems) : mergeAndDecode(fragments)
      return Either.match(result, {
        onLeft: (all) => {
          const [first, ...rest] = all.map(toConfigError)
          return first === undefined ? Effect.die("config check failed without a problem") : Effect.fail([first, ...rest] as const)
        },
        onRight: Effect.succeed
      })
    })
  )

// ---- Reading ------------------------------------------------------------------------------------


const fsCall = <A>(file: string, what: string, call: () => Promise<A>): Effect.Effect<A, Problem> =>
  Effect.tryPromise({ try: call, catch: (error) => ({ file, path: [], reason: `cannot ${what}: ${errorText(error)}` }) })

/** Entry names of `dir` in lexical order; none when it does not exist. */
const entriesOf = (dir: string): Effect.Effect<ReadonlyArray<string>, Problem> =>
  Effect.tryPromise({ try: () => Fs.readdir(dir), catch: (error) => error }).pipe(
    Effect.map((names) => [...names].sort()),
    Effect.catchAll((error) =>
      errorCode(error) === "ENOENT"
        ? Effect.succeed([])
        : Effect.fail<Problem>({ file: dir, path: [], reason: `cannot read directory: ${errorText(error)}` })
    )
  )

/** Absolute paths of the entries of `dir` that are directories (`"directory"`) or `.json` files (`"json"`). */
const entriesOfKind = (dir: string, kind: "directory" | "json"): Effect.Effect<ReadonlyArray<string>, Problem> =>
  entriesOf(dir).pipe(
    Effect.map((names) => names.filter((name) => kind === "directory" || name.endsWith(".json"))),
    Effect.flatMap((names) =>
      Effect.filter(
        names.map((name) => NodePath.join(dir, name)),
        (file) =>
          fsCall(file, "read", () => Fs.stat(file)).pipe(
            Effect.map((stat) => (kind === "directory" ? stat.isDirectory() : stat.isFile()))
          )
      )
    )
  )

const readFragments = (options: ConfigLoadOptions) =>
  Effect.gen(function*() {
    const fragments: Array<Fragment> = []
    const problems: Array<Problem> = []
    const dataDir = NodePath.resolve(options.dataDir)
    const attempt = <A>(effect: Effect.Effect<A, Problem>, fallback: A) =>
      Effect.catchAll(effect, (problem) =>
        Effect.sync(() => {
          problems.push(problem)
          return fallback
        }))
    const accept = (source: string, value: unknown, moduleDir: string | undefined) => {
      const checked = checkFragment(value, { dataDir, moduleDir })
      problems.push(...checked.issues.map((issue) => ({ file: source, ...issue })))
      if (checked.issues.length === 0 && checked.value !== undefined) fragments.push({ source, value: checked.value })
    }
    const readFile = (file: string, moduleDir: string | undefined) =>
      attempt(
        fsCall(file, "read file", () => Fs.readFile(file, "utf8")).pipe(
          Effect.map((text) => {
            const parsed = parseJson(text)
            if (Either.isLeft(parsed)) problems.push({ file, path: [], reason: parsed.left })
            else accept(file, parsed.right, moduleDir)
          })
        ),
        undefined
      )

    for (const moduleDir of yield* attempt(entriesOfKind(NodePath.resolve(options.modulesDir), "directory"), [])) {
      for (const file of yield* attempt(entriesOfKind(NodePath.join(moduleDir, "config"), "json"), [])) {
        yield* readFile(file, moduleDir)
      }
    }
    if (options.hostDefaults !== undefined) accept(hostDefaultsSource, options.hostDefaults, undefined)
    for (const file of yield* attempt(entriesOfKind(NodePath.join(dataDir, "config"), "json"), [])) {
      yield* readFile(file, undefined)
    }
    return { fragments, problems }
  })

// ---- Parsing ------------------------------------------------------------------------------------

const parseJson = (text: string): Either.Either<unknown, string> => {
  // Editors on some systems save a byte-order mark, which JSON.parse rejects.
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text
  try {
    const value: unknown = JSON.parse(body)
    return Either.right(value)
  } catch (error) {
    const message = errorText(error)
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

// ---- Placeholders -------------------------------------------------------------------------------

interface PlaceholderScope {
  readonly dataDir: string
  /** The fragment's module directory; only factory fragments have one. */
  readonly moduleDir: string | undefined
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const resolvePlaceholders = (value: unknown, path: Path, scope: PlaceholderScope, issues: Array<PathIssue>): unknown => {
  if (typeof value === "string") {
    let text = value
    if (text.includes("{module_dir}")) {
      if (scope.moduleDir === undefined) {
        issues.push({ path, reason: "{module_dir} is only available in a module's factory fragments (<modules>/<m>/config/*.json)" })
      } else {
        text = text.split("{module_dir}").join(scope.moduleDir)
      }
    }
    return text.split("{data_dir}").join(scope.dataDir)
  }
  if (Array.isArray(value)) {
    const items: ReadonlyArray<unknown> = value
    return items.map((item, index) => resolvePlaceholders(item, [...path, index], scope, issues))
  }
  if (isPlainObject(value)) {
    const resolved: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      // Plain assignment of this key would replace the object's prototype instead of adding a field.
      if (key === "__proto__") issues.push({ path: [...path, key], reason: "\"__proto__\" is not allowed as a key" })
      else resolved[key] = resolvePlaceholders(item, [...path, key], scope, issues)
    }
    return resolved
  }
  return value
}

// ---- Checking one fragment ----------------------------------------------------------------------

/** The encoded side of `HostConfig` with its refinements: what a fragment may contain. */
const fragmentAst = AST.encodedBoundAST(HostConfig.ast)

const checkFragment = (
  value: unknown,
  scope: PlaceholderScope
): { readonly value: Record<string, unknown> | undefined; readonly issues: ReadonlyArray<PathIssue> } => {
  if (!isPlainObject(value)) {
    return { value: undefined, issues: [{ path: [], reason: `expected a JSON object, got ${show(value)}` }] }
  }
  const issues: Array<PathIssue> = []
  const resolved = resolvePlaceholders(value, [], scope, issues)
  checkPartial(fragmentAst, resolved, [], issues)
  return { value: isPlainObject(resolved) ? resolved : undefined, issues }
}

type JsonKind = "object" | "array" | "other"

const jsonKind = (value: unknown): JsonKind => (Array.isArray(value) ? "array" : isPlainObject(value) ? "object" : "other")

const astKind = (ast: AST.AST): JsonKind => {
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

/** A union's members, nested unions flattened, without `undefined` (which JSON cannot say). */
const unionMembers = (ast: AST.Union): ReadonlyArray<AST.AST> =>
  ast.types.flatMap((member) =>
    AST.isUnion(member) ? unionMembers(member) : member._tag === "UndefinedKeyword" ? [] : [member]
  )

const accepts = (ast: AST.AST, value: unknown): boolean => Schema.is(Schema.make<unknown>(ast))(value)

/**
 * Checks a fragment against `ast` with every field optional: unknown fields and wrong types are
 * problems, missing fields are not (another fragment may set them).
 */
const checkPartial = (ast: AST.AST, value: unknown, path: Path, issues: Array<PathIssue>): void => {
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
  if (!accepts(ast, value)) issues.push({ path, reason: leafReason(ast, value) })
}

const checkObject = (ast: AST.TypeLiteral, value: unknown, path: Path, issues: Array<PathIssue>): void => {
  if (!isPlainObject(value)) {
    issues.push({ path, reason: `expected ${describe(ast)}, got ${show(value)}` })
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

const quoteAll = (names: ReadonlyArray<string>): string => names.map((name) => JSON.stringify(name)).join(", ")

const unknownFieldReason = (at: Path, key: string, known: ReadonlyArray<string>): string => {
  const what = `${at.length === 0 ? "unknown top-level section" : "unknown field"} ${JSON.stringify(key)}`
  const near = closest(key, known)
  return near === undefined ? `${what}; expected one of ${quoteAll(known)}` : `${what}; did you mean ${JSON.stringify(near)}?`
}

/** The known name within a small edit distance of a misspelt one, if there is exactly one best. */
const closest = (word: string, known: ReadonlyArray<string>): string | undefined => {
  const limit = Math.min(2, Math.floor(word.length / 3))
  const scored = known.map((name) => ({ name, distance: editDistance(word, name) })).filter((s) => s.distance <= limit)
  const best = Math.min(...scored.map((s) => s.distance))
  const nearest = scored.filter((s) => s.distance === best)
  return nearest.length === 1 ? nearest[0]?.name : undefined
}

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min(substitution, (previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

// ---- Describing expectations --------------------------------------------------------------------

const show = (value: unknown): string => {
  const text = value === undefined ? "nothing" : JSON.stringify(value) ?? String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const stringLiterals = (members: ReadonlyArray<AST.AST>): ReadonlyArray<string> =>
  members.flatMap((member) => (member._tag === "Literal" && typeof member.literal === "string" ? [member.literal] : []))

/** Why `value` does not fit `ast`: a refinement's own message when it has one, else what was expected. */
const leafReason = (ast: AST.AST, value: unknown): string => {
  if (AST.isUnion(ast)) {
    const members = unionMembers(ast)
    const [only] = members
    if (members.length === 1 && only !== undefined) return leafReason(only, value)
    const literals = stringLiterals(members)
    const near = typeof value === "string" && literals.length === members.length ? closest(value, literals) : undefined
    return `expected ${describe(ast)}, got ${show(value)}${near === undefined ? "" : `; did you mean ${JSON.stringify(near)}?`}`
  }
  const message = refinementMessage(ast, value)
  return `${message ?? `expected ${describe(ast)}`}, got ${show(value)}`
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
const describe = (ast: AST.AST): string => {
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

// ---- Merging with provenance --------------------------------------------------------------------

type Provenance = Map<string, string>

const copyJson = (value: unknown): unknown => {
  if (Array.isArray(value)) {
    const items: ReadonlyArray<unknown> = value
    return items.map(copyJson)
  }
  return isPlainObject(value) ? Object.fromEntries(Object.entries(value).map(([key, item]) => [key, copyJson(item)])) : value
}

/** Records `source` for `path` and every path below it in `value`. */
const remember = (value: unknown, path: Path, source: string, provenance: Provenance): void => {
  provenance.set(renderConfigPath(path), source)
  if (Array.isArray(value)) {
    const items: ReadonlyArray<unknown> = value
    items.forEach((item, index) => remember(item, [...path, index], source, provenance))
  } else if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) remember(item, [...path, key], source, provenance)
  }
}

/** Forgets every path strictly below `rendered`, whose value is being replaced. */
const forgetBelow = (rendered: string, provenance: Provenance): void => {
  for (const key of [...provenance.keys()]) {
    if (key.startsWith(`${rendered}.`) || key.startsWith(`${rendered}[`)) provenance.delete(key)
  }
}

/** Objects merge key by key; anything else (arrays, scalars, null) replaces what was there. */
const mergeInto = (
  target: Record<string, unknown>,
  fragment: Record<string, unknown>,
  at: Path,
  source: string,
  provenance: Provenance
): void => {
  for (const [key, incoming] of Object.entries(fragment)) {
    const path = [...at, key]
    const existing = Object.hasOwn(target, key) ? target[key] : undefined
    if (isPlainObject(existing) && isPlainObject(incoming)) {
      mergeInto(existing, incoming, path, source, provenance)
      provenance.set(renderConfigPath(path), source)
    } else {
      forgetBelow(renderConfigPath(path), provenance)
      target[key] = copyJson(incoming)
      remember(incoming, path, source, provenance)
    }
  }
}

/** The source that set `path`, or else its nearest ancestor that has one. */
const blame = (provenance: Provenance, path: Path): string => {
  for (let length = path.length; length > 0; length--) {
    const source = provenance.get(renderConfigPath(path.slice(0, length)))
    if (source !== undefined) return source
  }
  return mergedConfigSource
}

// ---- Decoding the merged config -----------------------------------------------------------------

const decodeMerged = Schema.decodeUnknownEither(HostConfig, { errors: "all", onExcessProperty: "error" })

const mergeAndDecode = (fragments: ReadonlyArray<Fragment>): Either.Either<LoadedConfig, ReadonlyArray<Problem>> => {
  const merged: Record<string, unknown> = {}
  const provenance: Provenance = new Map()
  for (const fragment of fragments) mergeInto(merged, fragment.value, [], fragment.source, provenance)
  return decodeMerged(merged).pipe(
    Either.mapLeft((error) => {
      const issues: Array<PathIssue> = []
      collectIssues(error.issue, [], issues)
      return issues.map((issue) => ({ file: blame(provenance, issue.path), ...issue }))
    }),
    Either.flatMap((config) => {
      const problems = crossCheck(config, provenance)
      const loaded: LoadedConfig = {
        config,
        sources: fragments.map((fragment) => fragment.source),
        provenance: (path) => provenance.get(path)
      }
      return problems.length > 0 ? Either.left(problems) : Either.right(loaded)
    })
  )
}

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
const collectIssues = (issue: ParseResult.ParseIssue, path: Path, issues: Array<PathIssue>): void => {
  switch (issue._tag) {
    case "Pointer": {
      const segments = Arr.ensure(issue.path).map((key) => (typeof key === "number" ? key : String(key)))
      return collectIssues(issue.issue, [...path, ...segments], issues)
    }
    case "Transformation":
      return collectIssues(issue.issue, path, issues)
    case "Refinement":
      if (issue.kind === "From") return collectIssues(issue.issue, path, issues)
      issues.push({ path, reason: leafReason(issue.ast, issue.actual) })
      return
    case "Composite": {
      const members = Arr.ensure(issue.issues)
      if (!AST.isUnion(issue.ast)) return members.forEach((member) => collectIssues(member, path, issues))
      const kind = jsonKind(issue.actual)
      const selected = kind === "other" ? [] : members.filter((member) => issueKind(member) === kind)
      const [only] = selected
      if (selected.length === 1 && only !== undefined) return collectIssues(only, path, issues)
      issues.push({ path, reason: leafReason(issue.ast, issue.actual) })
      return
    }
    case "Type":
      issues.push({ path, reason: leafReason(issue.ast, issue.actual) })
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

// ---- Cross-checks -------------------------------------------------------------------------------

/** Per kind, the fields a component needs beyond the schema's own requirements. */
const kindRequirements = (component: ComponentConfig): ReadonlyArray<PathIssue> => {
  const kind = JSON.stringify(component.kind)
  const required = (path: Path, detail = "") => [{ path, reason: `is required for kind ${kind}${detail}` }]
  switch (component.kind) {
    case "http_local_json":
      return [
        ...(component.launch === undefined ? required(["launch"]) : []),
        ...(component.http === undefined
          ? required(["http"], " (with \"port\" or \"endpoint\")")
          : component.http.port === undefined && component.http.endpoint === undefined
          ? [{ path: ["http"], reason: `needs "port" ("auto" or a number) or "endpoint" for kind ${kind}` }]
          : [])
      ]
    case "command_stdio":
      return component.launch === undefined ? required(["launch"]) : []
    case "local_http_json":
      return component.http?.endpoint === undefined ? required(["http", "endpoint"]) : []
    case "in_process":
      return component.function === undefined ? required(["function"]) : []
  }
}

const crossCheck = (config: HostConfig, provenance: Provenance): ReadonlyArray<Problem> => {
  const problems: Array<Problem> = []
  const componentIds = Object.keys(config.components)
  for (const [id, component] of Object.entries(config.components)) {
    const at = ["components", id]
    if (component.id !== undefined && component.id !== id) {
      const path = [...at, "id"]
      problems.push({ file: blame(provenance, path), path, reason: `must equal the component's key ${JSON.stringify(id)}, got ${JSON.stringify(component.id)}` })
    }
    // The kind decides what else is needed, so its fragment is the one to blame for what is missing.
    const kindSource = blame(provenance, [...at, "kind"])
    for (const requirement of kindRequirements(component)) {
      problems.push({ file: kindSource, path: [...at, ...requirement.path], reason: requirement.reason })
    }
  }
  for (const [hook, chain] of Object.entries(config.hooks)) {
    const listed = "components" in chain ? chain.components : chain
    const at = "components" in chain ? ["hooks", hook, "components"] : ["hooks", hook]
    listed.forEach((componentId, index) => {
      if (componentIds.includes(componentId)) return
      const path = [...at, index]
      const defined = componentIds.length === 0 ? "none are defined" : `defined: ${quoteAll(componentIds)}`
      problems.push({ file: blame(provenance, path), path, reason: `hook "${hook}" names component "${componentId}", which is not in components (${defined})` })
    })
  }
  return problems
}
