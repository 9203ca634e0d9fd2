/**
 * ConfigSchema: a JSON Schema (draft 2020-12) of one config fragment, generated from `HostConfig` with
 * Effect's `JSONSchema.make`, for editors (`corral config schema`). A fragment is partial — an operator
 * fragment may set one field of a component defined elsewhere — so nothing in it is required; the load
 * still checks the merged config. Draft 2020-12 rather than draft-07 because Effect puts bounds beside
 * `$ref` (`{"$ref": "#/$defs/Int", "minimum": 1}`), which draft-07 validators ignore.
 */
import { JSONSchema, Option, Predicate, SchemaAST as AST } from "effect"
import { componentIdPattern, HostConfig } from "./HostConfig.js"
import { configFieldDescriptions } from "./ConfigFieldDescriptions.js"

/** A JSON object, as the schema is built and printed. */
export type JsonObject = { [key: string]: unknown }

/**
 * Where a schema node sits: property names joined by `.`, `*` for any key of a map (`components.*.http`).
 * The same notation keys `configFieldDescriptions`.
 */
type SchemaPath = string

const join = (path: SchemaPath, key: string): SchemaPath => (path === "" ? key : `${path}.${key}`)

/** What `JSONSchema.make` cannot see in a filter, written as JSON Schema: keys of `components`, loopback hosts. */
const filterPatterns: Readonly<Record<SchemaPath, JsonObject>> = {
  "host.control.host": { pattern: "^(localhost|::1|127\\.(25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.(25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.(25[0-5]|2[0-4]\\d|1?\\d?\\d))$" }
}

/** Keys of `components`: the id pattern plus its no-`..` rule (ids name files). */
const componentKeySchema: JsonObject = { type: "string", pattern: `^(?!.*\\.\\.)${componentIdPattern.source.slice(1)}` }

/** The default of every field that has one, read from the schema's own `optionalWith` transformations. */
const collectDefaults = (ast: AST.AST, path: SchemaPath, into: Map<SchemaPath, unknown>): void => {
  switch (ast._tag) {
    case "Transformation":
      if (ast.transformation._tag === "TypeLiteralTransformation") {
        for (const field of ast.transformation.propertySignatureTransformations) {
          const value = field.decode(Option.none())
          if (Option.isSome(value) && Predicate.isString(field.from)) into.set(join(path, field.from), value.value)
        }
      }
      return collectDefaults(ast.from, path, into)
    case "TypeLiteral":
      for (const property of ast.propertySignatures) collectDefaults(property.type, join(path, String(property.name)), into)
      for (const index of ast.indexSignatures) collectDefaults(index.type, join(path, "*"), into)
      return
    case "Union":
      return ast.types.forEach((member) => collectDefaults(member, path, into))
    case "Refinement":
      return collectDefaults(ast.from, path, into)
    default:
      return
  }
}

const isObject = (value: unknown): value is JsonObject => Predicate.isRecord(value) && !Array.isArray(value)

/** Effect's name for `Schema.Unknown`, which would re-base `$ref`s below it; an empty schema says the same. */
const isEffectUnknown = (node: JsonObject): boolean => node["$id"] === "/schemas/unknown"

/**
 * Rewrites one node in place for fragments: no `required`, the field's description (then Effect's own
 * words for its bounds), its default, and the patterns filters hide; then its children.
 */
const annotate = (node: JsonObject, path: SchemaPath, defaults: ReadonlyMap<SchemaPath, unknown>, field: boolean): void => {
  delete node["required"]
  if (field) {
    const bounds = Predicate.isString(node["description"]) ? node["description"] : undefined
    const described = configFieldDescriptions[path]
    if (described !== undefined) node["description"] = bounds === undefined ? described : `${described} Accepts ${bounds}.`
    // Effect's titles name its combinators (`between(1, 86400000)`): noise in an editor's hover.
    delete node["title"]
    if (defaults.has(path)) node["default"] = defaults.get(path)
    Object.assign(node, filterPatterns[path] ?? {})
  }
  const properties = node["properties"]
  if (isObject(properties)) {
    for (const [key, child] of Object.entries(properties)) {
      if (isObject(child)) annotate(child, join(path, key), defaults, true)
    }
  }
  const patterns = node["patternProperties"]
  if (isObject(patterns)) {
    for (const [pattern, child] of Object.entries(patterns)) {
      if (!isObject(child)) continue
      const value = isEffectUnknown(child) ? {} : child
      patterns[pattern] = value
      annotate(value, join(path, "*"), defaults, true)
    }
  }
  for (const combinator of ["anyOf", "allOf"]) {
    const members = node[combinator]
    if (Array.isArray(members)) members.forEach((member: unknown) => isObject(member) && annotate(member, path, defaults, false))
  }
}

/** The JSON Schema of a config fragment, as `corral config schema` prints it. */
export const configFragmentSchema = (): JsonObject => {
  const generated: JsonObject = { ...JSONSchema.make(HostConfig, { target: "jsonSchema2020-12" }) }
  const defaults = new Map<SchemaPath, unknown>()
  collectDefaults(HostConfig.ast, "", defaults)
  annotate(generated, "", defaults, false)
  const properties = generated["properties"]
  const components = isObject(properties) ? properties["components"] : undefined
  if (isObject(components)) components["propertyNames"] = componentKeySchema
  const { $schema, ...rest } = generated
  return {
    $schema,
    title: "Corral config fragment",
    description: "One file of <modules>/<m>/config/*.json or <data-dir>/config/*.json. Fragments are deep-merged in " +
      "order (objects key by key, anything else replaced), so each may set any part of the config; the merged " +
      "result must be complete (`corral config check`).",
    ...rest
  }
}
