// Effect 3 has no Prometheus exporter; Effect 4 ships one, so this whole module is deleted on that move.
import { Effect, Metric, Option } from "effect"
import type { MetricPair } from "effect"
import * as MetricState from "effect/MetricState"

/** The HTTP `Content-Type` of the Prometheus text exposition format, version 0.0.4. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

type Label = readonly [name: string, value: string]
type FamilyType = "counter" | "gauge" | "histogram" | "summary"

interface Series {
  readonly sortKey: string
  readonly lines: ReadonlyArray<string>
}

interface Family {
  readonly name: string
  readonly type: FamilyType
  readonly help: string | undefined
  readonly series: ReadonlyArray<Series>
}

const sanitizeMetricName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return replaced === "" || /^[0-9]/.test(replaced) ? `_${replaced}` : replaced
}

const sanitizeLabelName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return replaced === "" || /^[0-9]/.test(replaced) ? `_${replaced}` : replaced
}

const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatNumber = (n: number | bigint): string => {
  if (typeof n === "bigint") return n.toString()
  if (Number.isNaN(n)) return "NaN"
  if (n === Number.POSITIVE_INFINITY) return "+Inf"
  if (n === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(n)
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const renderLabels = (labels: ReadonlyArray<Label>): string =>
  labels.length === 0 ? "" : `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`

// The label a format adds itself (le, quantile, key) replaces a tag of the same name.
const withLabel = (labels: ReadonlyArray<Label>, name: string, value: string): ReadonlyArray<Label> => [
  ...labels.filter(([existing]) => existing !== name),
  [name, value]
]

const withTotal = (name: string): string => (name.endsWith("_total") ? name : `${name}_total`)

const sample = (name: string, labels: ReadonlyArray<Label>, value: number | bigint): string =>
  `${name}${renderLabels(labels)} ${formatNumber(value)}`

const toFamily = (pair: MetricPair.MetricPair.Untyped): Family | undefined => {
  const key = pair.metricKey
  const state: unknown = pair.metricState
  const base = sanitizeMetricName(key.name)
  const help = Option.getOrUndefined(key.description)
  const labels: ReadonlyArray<Label> = key.tags
    .map((tag): Label => [sanitizeLabelName(tag.key), tag.value])
    .sort((a, b) => compareStrings(a[0], b[0]))
  const sortKey = renderLabels(labels)

  if (MetricState.isCounterState(state)) {
    const name = withTotal(base)
    return { name, type: "counter", help, series: [{ sortKey, lines: [sample(name, labels, state.count)] }] }
  }
  if (MetricState.isGaugeState(state)) {
    return { name: base, type: "gauge", help, series: [{ sortKey, lines: [sample(base, labels, state.value)] }] }
  }
  if (MetricState.isHistogramState(state)) {
    // Effect's buckets are already cumulative; its +Inf bucket is replaced by the total count.
    const buckets = state.buckets
      .filter(([boundary]) => boundary !== Number.POSITIVE_INFINITY)
      .map(([boundary, count]) => sample(`${base}_bucket`, withLabel(labels, "le", formatNumber(boundary)), count))
    const lines = [
      ...buckets,
      sample(`${base}_bucket`, withLabel(labels, "le", "+Inf"), state.count),
      sample(`${base}_sum`, labels, state.sum),
      sample(`${base}_count`, labels, state.count)
    ]
    return { name: base, type: "histogram", help, series: [{ sortKey, lines }] }
  }
  if (MetricState.isSummaryState(state)) {
    const quantiles = state.quantiles.map(([quantile, value]) =>
      sample(base, withLabel(labels, "quantile", formatNumber(quantile)), Option.getOrElse(value, () => Number.NaN))
    )
    const lines = [...quantiles, sample(`${base}_sum`, labels, state.sum), sample(`${base}_count`, labels, state.count)]
    return { name: base, type: "summary", help, series: [{ sortKey, lines }] }
  }
  if (MetricState.isFrequencyState(state)) {
    // A frequency is one counter series per observed word, the word in a `key` label.
    const name = withTotal(base)
    const series = Array.from(state.occurrences, ([word, count]): Series => {
      const wordLabels = withLabel(labels, "key", word)
      return { sortKey: renderLabels(wordLabels), lines: [sample(name, wordLabels, count)] }
    })
    return { name, type: "counter", help, series }
  }
  return undefined
}

// Series of one name may carry different descriptions; the smallest wins so the output is deterministic.
const earlierHelp = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined ? a : b < a ? b : a

/**
 * Renders metric pairs as Prometheus text (0.0.4): one `# HELP` (when described) and `# TYPE` per name,
 * families sorted by name, series by labels. Frequencies render as counters with a `key` label per word.
 */
export const renderPrometheus = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const family = toFamily(pair)
    if (family === undefined) continue
    // Keyed by type too: a name registered as two kinds renders as two families rather than a mixed one.
    const groupKey = `${family.name} ${family.type}`
    const existing = families.get(groupKey)
    if (existing === undefined) {
      families.set(groupKey, family)
    } else {
      const help = earlierHelp(existing.help, family.help)
      families.set(groupKey, { ...existing, help, series: [...existing.series, ...family.series] })
    }
  }
  const sorted = Array.from(families.entries())
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([, family]) => family)
  const lines: Array<string> = []
  for (const family of sorted) {
    if (family.help !== undefined) lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    const series = [...family.series].sort((a, b) => compareStrings(a.sortKey, b.sortKey))
    for (const one of series) lines.push(...one.lines)
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}

/** Renders the metrics of the global registry whose Effect name starts with `prefix` (all when absent). */
export const prometheusSnapshotWith = (options: { readonly prefix?: string | undefined }): Effect.Effect<string> =>
  Effect.map(Metric.snapshot, (pairs) => {
    const prefix = options.prefix
    return renderPrometheus(prefix === undefined ? pairs : pairs.filter((pair) => pair.metricKey.name.startsWith(prefix)))
  })

/** Renders every metric of the global registry as Prometheus text. */
export const prometheusSnapshot: Effect.Effect<string> = prometheusSnapshotWith({})
