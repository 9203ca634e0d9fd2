/**
 * What a config with broken fragments can still tell: each fragment that parsed is merged without the
 * values its own check refused, so problems of the merged config in other files (a hook naming an
 * unknown component, a missing field) are reported in the same run — `corral config check` lists every
 * problem, not one stage at a time. Problems that only echo a refused value are left out.
 */
import { isPlainObject } from "./JsonShape.js"
import type { ConfigPath, ConfigProblem } from "./ConfigProblem.js"

const copyWithout = (value: unknown, path: ConfigPath): unknown => {
  const [head, ...rest] = path
  if (head === undefined || !isPlainObject(value) || typeof head !== "string" || !Object.hasOwn(value, head)) return value
  const { [head]: inner, ...others } = value
  return rest.length === 0 ? others : { ...others, [head]: copyWithout(inner, rest) }
}

/** A refused path cut at its first array index: an array missing one item would read as another list. */
const prunedPath = (path: ConfigPath): ConfigPath => {
  const index = path.findIndex((segment) => typeof segment === "number")
  return index === -1 ? path : path.slice(0, index)
}

/** `value` without `paths` (each cut at its first array index); the input is not changed. */
export const withoutPaths = (value: Record<string, unknown>, paths: ReadonlyArray<ConfigPath>): Record<string, unknown> => {
  const pruned = paths.map(prunedPath).reduce<unknown>((at, path) => copyWithout(at, path), value)
  return isPlainObject(pruned) ? pruned : {}
}

/**
 * Whether a merge without the refused values says anything trustworthy: not when a whole file is unknown
 * (unreadable, not JSON, not an object) or a whole top-level section of one was refused.
 */
export const salvageable = (problems: ReadonlyArray<ConfigProblem>): boolean =>
  problems.every((problem) => prunedPath(problem.path).length >= 2)

const isPrefix = (prefix: ConfigPath, path: ConfigPath): boolean =>
  prefix.length <= path.length && prefix.every((segment, index) => segment === path[index])

/**
 * Whether `problem` (of the merged config) may only echo a refused value: it is at, above or below a
 * refused path, or it names a component whose whole definition in some fragment was refused.
 */
export const echoesRefused = (problem: ConfigProblem, refused: ReadonlyArray<ConfigProblem>): boolean =>
  refused.some(({ path }) => {
    const cut = prunedPath(path)
    const [section, id] = cut
    return isPrefix(cut, problem.path) || isPrefix(problem.path, cut) ||
      (section === "components" && cut.length === 2 && typeof id === "string" && problem.reason.includes(JSON.stringify(id)))
  })
