/** "Did you mean": the known name nearest to a misspelt one, by edit distance. */

/** The known name within a small edit distance of a misspelt one, if there is exactly one best. */
export const closest = (word: string, known: ReadonlyArray<string>): string | undefined => {
  const limit = Math.min(2, Math.floor(word.length / 3))
  const scored = known.map((name) => ({ name, distance: editDistance(word, name) })).filter((s) => s.distance <= limit)
  const best = Math.min(...scored.map((s) => s.distance))
  const nearest = scored.filter((s) => s.distance === best)
  return nearest.length === 1 ? nearest[0]?.name : undefined
}

/** Levenshtein distance: insertions, deletions and substitutions, each costing one. */
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
