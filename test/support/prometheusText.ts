/**
 * Reads Prometheus text as a scraper would: every sample line (`name{labels} value`) keyed by its series
 * (`name{labels}` exactly as written), so tests assert on what Prometheus would store.
 */

/** The samples of a Prometheus text, by series. */
export const parseSamples = (text: string): ReadonlyMap<string, number> => {
  const samples = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue
    const split = line.lastIndexOf(" ")
    const value = line.slice(split + 1)
    samples.set(line.slice(0, split), value === "+Inf" ? Number.POSITIVE_INFINITY : value === "-Inf" ? Number.NEGATIVE_INFINITY : Number(value))
  }
  return samples
}

/** The value of one series (`name{a="b"}`, labels in the order the text writes them); undefined when absent. */
export const sampleOf = (text: string, series: string): number | undefined => parseSamples(text).get(series)

/** The `# TYPE` lines of a text: family name → type. */
export const familyTypes = (text: string): ReadonlyMap<string, string> =>
  new Map(
    text.split("\n").filter((line) => line.startsWith("# TYPE ")).map((line) => {
      const [name = "", type = ""] = line.slice("# TYPE ".length).split(" ")
      return [name, type] as const
    })
  )
