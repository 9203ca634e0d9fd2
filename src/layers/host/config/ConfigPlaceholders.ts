/**
 * Config placeholders: `{data_dir}` in any fragment's strings, `{module_dir}` in a module's factory
 * fragments only. Resolved per fragment, before it is checked, so problems name the fragment.
 */
import type { ConfigPath, PathIssue } from "./ConfigProblem.js"
import { isPlainObject } from "./JsonShape.js"

/** What the placeholders of one fragment stand for. */
export interface PlaceholderScope {
  readonly dataDir: string
  /** The fragment's module directory; only factory fragments have one. */
  readonly moduleDir: string | undefined
}

/** A copy of `value` with its placeholders replaced; misplaced ones and `__proto__` keys go to `issues`. */
export const resolvePlaceholders = (
  value: unknown,
  path: ConfigPath,
  scope: PlaceholderScope,
  issues: Array<PathIssue>
): unknown => {
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
