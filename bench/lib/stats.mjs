// Summary statistics and number formatting shared by the bench drivers.

/** Median of the finite numbers in `values` (others are left out); NaN when there are none. */
export const median = (values) => {
  const sorted = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Nearest-rank percentile `q` (0..1) of an ascending array; NaN when it is empty. */
export const percentile = (sorted, q) => {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/** `n` with `digits` decimals, or "–" when it is not a finite number. */
export const fmt = (n, digits = 3) => (Number.isFinite(n) ? n.toFixed(digits) : "–")

/** Least-squares slope of `ys` over `xs` (same length, at least 2 points); NaN otherwise. */
export const leastSquaresSlope = (xs, ys) => {
  const n = Math.min(xs.length, ys.length)
  if (n < 2) return Number.NaN
  let sx = 0
  let sy = 0
  for (let i = 0; i < n; i++) {
    sx += xs[i]
    sy += ys[i]
  }
  const mx = sx / n
  const my = sy / n
  let sxy = 0
  let sxx = 0
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my)
    sxx += (xs[i] - mx) ** 2
  }
  return sxx === 0 ? Number.NaN : sxy / sxx
}
