/**
 * Deep-merges fragments in order and remembers which source last set each path, so a problem in
 * the merged config can be blamed on the fragment that caused it.
 */
import { mergedConfigSource } from "../../../services/host/ConfigLoader.js"
import { renderConfigPath } from "../../../services/system/ParseIssues.js"
import type { ConfigPath } from "./ConfigProblem.js"
import type { Fragment } from "./FragmentReading.js"
import { isPlainObject } from "./JsonShape.js"

/** The source that last set each path, keyed by `renderConfigPath`. */
export type Provenance = Map<string, string>

/** The merged value of `fragments`, in order, and where each of its paths came from. */
export const mergeFragments = (
  fragments: ReadonlyArray<Fragment>
): { readonly merged: Record<string, unknown>; readonly provenance: Provenance } => {
  const merged: Record<string, unknown> = {}
  const provenance: Provenance = new Map()
  for (const fragment of fragments) mergeInto(merged, fragment.value, [], fragment.source, provenance)
  return { merged, provenance }
}

/** The source that set `path`, or else its nearest ancestor that has one. */
export const blame = (provenance: Provenance, path: ConfigPath): string => {
  for (let length = path.length; length > 0; length--) {
    const source = provenance.get(renderConfigPath(path.slice(0, length)))
    if (source !== undefined) return source
  }
  return mergedConfigSource
}

const copyJson = (value: unknown): unknown => {
  if (Array.isArray(value)) {
    const items: ReadonlyArray<unknown> = value
    return items.map(copyJson)
  }
  return isPlainObject(value) ? Object.fromEntries(Object.entries(value).map(([key, item]) => [key, copyJson(item)])) : value
}

/** Records `source` for `path` and every path below it in `value`. */
const remember = (value: unknown, path: ConfigPath, source: string, provenance: Provenance): void => {
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
  at: ConfigPath,
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
