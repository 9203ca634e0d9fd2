/**
 * The config fragment JSON Schema: the bundled fragments and a one-field operator override pass it, a
 * wrong type, an unknown field and a bad component id fail it, every field is described, and (where
 * Python's `jsonschema` is installed) it is a valid draft 2020-12 schema that a real validator agrees with.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { configFragmentSchema, type JsonObject } from "../../../src/services/host/ConfigSchema.js"

const modulesDir = Path.resolve(import.meta.dirname, "../../../modules")

const bundledFragments = Fs.readdirSync(modulesDir).flatMap((module) => {
  const dir = Path.join(modulesDir, module, "config")
  return Fs.existsSync(dir) ? Fs.readdirSync(dir).filter((name) => name.endsWith(".json")).map((name) => Path.join(dir, name)) : []
})

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value)

const jsonType = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value

/** Keywords that say nothing about validity. */
const annotationKeywords = new Set(["$schema", "$defs", "title", "description", "default"])

/**
 * A small validator for the keywords the generated schema uses; an unknown keyword throws, so the
 * check cannot pass by ignoring a constraint it does not know.
 */
const validate = (root: JsonObject, schema: JsonObject, value: unknown, at: string): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const fail = (reason: string) => problems.push(`${at || "(root)"}: ${reason}`)
  for (const [keyword, rule] of Object.entries(schema)) {
    if (annotationKeywords.has(keyword)) continue
    switch (keyword) {
      case "$ref": {
        const name = String(rule).replace("#/$defs/", "")
        const defs = root["$defs"]
        const target = isObject(defs) ? defs[name] : undefined
        if (!isObject(target)) throw new Error(`unresolved $ref ${String(rule)}`)
        problems.push(...validate(root, target, value, at))
        break
      }
      case "type":
        if (jsonType(value) !== rule && !(rule === "number" && jsonType(value) === "integer")) fail(`expected ${String(rule)}, got ${JSON.stringify(value)}`)
        break
      case "enum":
        if (!(Array.isArray(rule) && rule.includes(value))) fail(`expected one of ${JSON.stringify(rule)}, got ${JSON.stringify(value)}`)
        break
      case "minimum":
        if (typeof value === "number" && value < Number(rule)) fail(`below ${String(rule)}`)
        break
      case "maximum":
        if (typeof value === "number" && value > Number(rule)) fail(`above ${String(rule)}`)
        break
      case "exclusiveMinimum":
        if (typeof value === "number" && value <= Number(rule)) fail(`not above ${String(rule)}`)
        break
      case "minLength":
        if (typeof value === "string" && value.length < Number(rule)) fail(`shorter than ${String(rule)}`)
        break
      case "pattern":
        if (typeof value === "string" && !new RegExp(String(rule), "u").test(value)) fail(`${JSON.stringify(value)} does not match ${String(rule)}`)
        break
      case "items":
        if (Array.isArray(value) && isObject(rule)) value.forEach((item, index) => problems.push(...validate(root, rule, item, `${at}[${index}]`)))
        break
      case "anyOf":
        if (Array.isArray(rule) && !rule.some((member) => isObject(member) && validate(root, member, value, at).length === 0)) fail("matches no alternative")
        break
      case "allOf":
        if (Array.isArray(rule)) rule.forEach((member) => isObject(member) && problems.push(...validate(root, member, value, at)))
        break
      case "propertyNames":
        if (isObject(value) && isObject(rule)) Object.keys(value).forEach((key) => problems.push(...validate(root, rule, key, `${at}{${key}}`)))
        break
      case "properties":
      case "patternProperties":
      case "additionalProperties":
        break
      default:
        throw new Error(`the small validator does not know ${keyword} (at ${at || "(root)"})`)
    }
  }
  if (isObject(value) && (schema["properties"] !== undefined || schema["patternProperties"] !== undefined || schema["additionalProperties"] !== undefined)) {
    const properties = isObject(schema["properties"]) ? schema["properties"] : {}
    const patterns = isObject(schema["patternProperties"]) ? schema["patternProperties"] : {}
    for (const [key, item] of Object.entries(value)) {
      const path = at === "" ? key : `${at}.${key}`
      const named = properties[key]
      const matching = Object.entries(patterns).filter(([pattern]) => new RegExp(pattern, "u").test(key)).map(([, child]) => child)
      if (isObject(named)) problems.push(...validate(root, named, item, path))
      matching.forEach((child) => isObject(child) && problems.push(...validate(root, child, item, path)))
      if (!isObject(named) && matching.length === 0) {
        const additional = schema["additionalProperties"]
        if (additional === false) problems.push(`${path}: unknown field`)
        else if (isObject(additional)) problems.push(...validate(root, additional, item, path))
      }
    }
  }
  return problems
}

const schema = configFragmentSchema()
const check = (fragment: unknown) => validate(schema, schema, fragment, "")

describe("configFragmentSchema", () => {
  it("accepts every bundled fragment, and an operator fragment that overrides one field of a component", () => {
    expect(bundledFragments.length).toBeGreaterThanOrEqual(3)
    for (const file of bundledFragments) expect([file, check(JSON.parse(Fs.readFileSync(file, "utf8")))]).toEqual([file, []])
    expect(check({ components: { "middleware.dator": { http: { request_timeout_ms: 9000 } } } })).toEqual([])
    expect(check({ hooks: { ingress: { failure_policy: "fail_open" } } })).toEqual([])
  })

  it("catches a wrong type, a value out of bounds, an unknown field, a bad component id and a non-loopback host", () => {
    expect(check({ components: { "middleware.dator": { http: { request_timeout_ms: "5s" } } } }))
      .toEqual([`components.middleware.dator.http.request_timeout_ms: expected integer, got "5s"`])
    expect(check({ host: { control: { port: 70000 } } })).toEqual(["host.control.port: above 65535"])
    expect(check({ components: { "middleware.dator": { restart_policy: { max_restart: 5 } } } }))
      .toEqual(["components.middleware.dator.restart_policy.max_restart: unknown field"])
    expect(check({ components: { "Bad..id": {} } })).toHaveLength(1)
    expect(check({ host: { control: { host: "0.0.0.0" } } })).toHaveLength(1)
  })

  it("describes every field, gives the defaults of the schema, and names the draft it follows", () => {
    expect(schema["$schema"]).toBe("https://json-schema.org/draft/2020-12/schema")
    const undescribed: Array<string> = []
    const walk = (node: unknown, path: string) => {
      if (!isObject(node)) return
      const children = [
        ...Object.entries(isObject(node["properties"]) ? node["properties"] : {}).map(([key, child]) => [path ? `${path}.${key}` : key, child] as const),
        ...Object.values(isObject(node["patternProperties"]) ? node["patternProperties"] : {}).map((child) => [`${path}.*`, child] as const)
      ]
      for (const [childPath, child] of children) {
        if (!isObject(child) || typeof child["description"] !== "string") undescribed.push(childPath)
        walk(child, childPath)
      }
      for (const combinator of ["anyOf", "allOf"]) {
        const members = node[combinator]
        if (Array.isArray(members)) members.forEach((member) => walk(member, path))
      }
    }
    walk(schema, "")
    expect(undescribed).toEqual([])
    const field = (node: unknown, ...keys: ReadonlyArray<string>): unknown =>
      keys.reduce<unknown>((at, key) => (isObject(at) ? at[key] : undefined), node)
    const component = field(schema, "properties", "components", "patternProperties", "")
    expect(field(component, "properties", "http", "properties", "request_timeout_ms", "default")).toBe(5000)
    expect(field(component, "properties", "restart_policy", "properties", "mode", "default")).toBe("on_failure")
    expect(field(component, "required")).toBeUndefined()
  })

  const python = spawnSync("python3", ["-c", "import jsonschema"], { timeout: 10_000 })
  const noJsonschema = python.status !== 0
  if (noJsonschema) console.log("skipped: the meta-schema check needs Python's jsonschema (apt-get install python3-jsonschema)")
  it.skipIf(noJsonschema)("is a valid draft 2020-12 schema, and Python's jsonschema agrees on a good and a bad fragment", () => {
    const script = [
      "import json, sys, jsonschema",
      "schema, good, bad = json.load(sys.stdin)",
      "jsonschema.Draft202012Validator.check_schema(schema)",
      "v = jsonschema.Draft202012Validator(schema)",
      "print(json.dumps([len(list(v.iter_errors(good))), len(list(v.iter_errors(bad)))]))"
    ].join("\n")
    const good = JSON.parse(Fs.readFileSync(bundledFragments[0] ?? "", "utf8")) as unknown
    const bad = { components: { "middleware.dator": { http: { request_timeout_ms: "5s" } } } }
    const run = spawnSync("python3", ["-c", script], { input: JSON.stringify([schema, good, bad]), encoding: "utf8", timeout: 20_000 })
    expect(run.stderr).toBe("")
    expect(JSON.parse(run.stdout)).toEqual([0, 1])
  })
})
