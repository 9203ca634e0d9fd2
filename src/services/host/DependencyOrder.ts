/**
 * Start order of components from their `depends_on` lists, pure: the problems of a dependency graph
 * (unknown ids, cycles) for the config check, and the waves the supervisor starts (and, reversed, stops)
 * components in. A component is in the wave after the latest of its dependencies.
 */

/** What ordering needs of a component: the ids it depends on. */
export interface DependsOn {
  readonly depends_on: ReadonlyArray<string>
}

/** A problem of the graph: `index` is the position in `depends_on` of the offending id. */
export type DependencyProblem =
  | { readonly _tag: "Unknown"; readonly component: string; readonly index: number; readonly missing: string }
  | { readonly _tag: "Cycle"; readonly component: string; readonly index: number; readonly cycle: ReadonlyArray<string> }

/**
 * Every unknown id, and one problem per cycle (reported at the edge that closes it, the cycle's ids in
 * order, first repeated last: `a → b → a`). Components are visited in the order given.
 */
export const dependencyProblems = (components: Readonly<Record<string, DependsOn>>): ReadonlyArray<DependencyProblem> => {
  const problems: Array<DependencyProblem> = []
  for (const [component, { depends_on }] of Object.entries(components)) {
    depends_on.forEach((missing, index) => {
      if (!(missing in components)) problems.push({ _tag: "Unknown", component, index, missing })
    })
  }
  // Depth-first search with three colours: meeting a node still on the path closes a cycle.
  const done = new Set<string>()
  const path: Array<string> = []
  const visit = (id: string): void => {
    path.push(id)
    const deps = components[id]?.depends_on ?? []
    deps.forEach((dep, index) => {
      if (!(dep in components) || done.has(dep)) return
      const onPath = path.indexOf(dep)
      if (onPath >= 0) problems.push({ _tag: "Cycle", component: id, index, cycle: [...path.slice(onPath), dep] })
      else visit(dep)
    })
    path.pop()
    done.add(id)
  }
  for (const id of Object.keys(components)) if (!done.has(id)) visit(id)
  return problems
}

/**
 * The ids of `components` in waves: every dependency of a component (among `components`) is in an
 * earlier wave. Ids outside `components` are ignored; ids on a cycle (which the config check refuses)
 * go in a last wave rather than being lost. Within a wave, ids keep the order given.
 */
export const startWaves = (components: Readonly<Record<string, DependsOn>>): ReadonlyArray<ReadonlyArray<string>> => {
  const ids = Object.keys(components)
  const wave = new Map<string, number>()
  // Longest-path levels by repeated relaxation: at most `ids.length` rounds settle any acyclic graph.
  for (let round = 0; round <= ids.length; round++) {
    let changed = false
    for (const id of ids) {
      const deps = (components[id]?.depends_on ?? []).filter((dep) => dep in components && dep !== id)
      const level = deps.reduce((max, dep) => Math.max(max, (wave.get(dep) ?? 0) + 1), 0)
      if (wave.get(id) !== level) {
        wave.set(id, Math.min(level, ids.length))
        changed = true
      }
    }
    if (!changed) break
  }
  const waves: Array<Array<string>> = []
  for (const id of ids) {
    const level = wave.get(id) ?? 0
    while (waves.length <= level) waves.push([])
    waves[level]?.push(id)
  }
  return waves.filter((ids) => ids.length > 0)
}
