import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, MetricKey, MetricPair, MetricState } from "effect"
import {
  contentType,
  prometheusSnapshot,
  prometheusSnapshotWith,
  renderPrometheus
} from "../../../src/layers/system/PrometheusText.js"

// The registry is global to the test file: each test uses its own metric names and renders only those.
const renderOnly = (...names: ReadonlyArray<string>) =>
  Effect.map(Metric.snapshot, (pairs) => renderPrometheus(pairs.filter((pair) => names.includes(pair.metricKey.name))))

describe("renderPrometheus", () => {
  it.effect("renders counters with a _total suffix, once, grouped under one HELP and TYPE", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("ptc_requests", { description: "Requests served" })
      yield* Metric.incrementBy(Metric.tagged(requests, "method", "POST"), 1)
      yield* Metric.incrementBy(Metric.tagged(requests, "method", "GET"), 3)
      yield* Metric.increment(Metric.counter("ptc_errors_total"))
      expect(yield* renderOnly("ptc_requests", "ptc_errors_total")).toBe(
        [
          "# TYPE ptc_errors_total counter",
          "ptc_errors_total 1",
          "# HELP ptc_requests_total Requests served",
          "# TYPE ptc_requests_total counter",
          "ptc_requests_total{method=\"GET\"} 3",
          "ptc_requests_total{method=\"POST\"} 1",
          ""
        ].join("\n")
      )
    }))

  it.effect("renders bigint counters beyond the float range exactly", () =>
    Effect.gen(function*() {
      const bytes = Metric.counter("ptb_bytes", { bigint: true })
      yield* Metric.incrementBy(bytes, 9007199254740993n)
      expect(yield* renderOnly("ptb_bytes")).toBe(
        "# TYPE ptb_bytes_total counter\nptb_bytes_total 9007199254740993\n"
      )
    }))

  it.effect("renders gauges, spelling infinities and NaN the Prometheus way", () =>
    Effect.gen(function*() {
      const value = Metric.gauge("ptg_value", { description: "A value" })
      yield* Metric.set(Metric.tagged(value, "case", "finite"), -1.5)
      yield* Metric.set(Metric.tagged(value, "case", "inf"), Number.POSITIVE_INFINITY)
      yield* Metric.set(Metric.tagged(value, "case", "minus_inf"), Number.NEGATIVE_INFINITY)
      yield* Metric.set(Metric.tagged(value, "case", "nan"), Number.NaN)
      expect(yield* renderOnly("ptg_value")).toBe(
        [
          "# HELP ptg_value A value",
          "# TYPE ptg_value gauge",
          "ptg_value{case=\"finite\"} -1.5",
          "ptg_value{case=\"inf\"} +Inf",
          "ptg_value{case=\"minus_inf\"} -Inf",
          "ptg_value{case=\"nan\"} NaN",
          ""
        ].join("\n")
      )
    }))

  it.effect("renders histograms as cumulative buckets ending in +Inf, then _sum and _count", () =>
    Effect.gen(function*() {
      const latency = Metric.tagged(
        Metric.histogram("pth_latency_ms", MetricBoundaries.fromIterable([10, 100]), "Latency"),
        "route",
        "/a"
      )
      yield* Metric.update(latency, 5)
      yield* Metric.update(latency, 50)
      yield* Metric.update(latency, 500)
      expect(yield* renderOnly("pth_latency_ms")).toBe(
        [
          "# HELP pth_latency_ms Latency",
          "# TYPE pth_latency_ms histogram",
          "pth_latency_ms_bucket{route=\"/a\",le=\"10\"} 1",
          "pth_latency_ms_bucket{route=\"/a\",le=\"100\"} 2",
          "pth_latency_ms_bucket{route=\"/a\",le=\"+Inf\"} 3",
          "pth_latency_ms_sum{route=\"/a\"} 555",
          "pth_latency_ms_count{route=\"/a\"} 3",
          ""
        ].join("\n")
      )
    }))

  it.effect("renders summaries with quantile labels, NaN for a quantile without samples", () =>
    Effect.gen(function*() {
      const options = { maxAge: "1 minute", maxSize: 100, error: 0, quantiles: [0.5, 0.99] } as const
      const size = Metric.summary({ name: "pts_size", description: "Sizes", ...options })
      // Equal samples keep the golden text independent of Effect's quantile estimator.
      for (const n of [7, 7, 7]) yield* Metric.update(size, n)
      yield* Metric.value(Metric.summary({ name: "pts_empty", ...options }))
      expect(yield* renderOnly("pts_size", "pts_empty")).toBe(
        [
          "# TYPE pts_empty summary",
          "pts_empty{quantile=\"0.5\"} NaN",
          "pts_empty{quantile=\"0.99\"} NaN",
          "pts_empty_sum 0",
          "pts_empty_count 0",
          "# HELP pts_size Sizes",
          "# TYPE pts_size summary",
          "pts_size{quantile=\"0.5\"} 7",
          "pts_size{quantile=\"0.99\"} 7",
          "pts_size_sum 21",
          "pts_size_count 3",
          ""
        ].join("\n")
      )
    }))

  it.effect("renders frequencies as one counter series per word in a key label", () =>
    Effect.gen(function*() {
      const status = Metric.frequency("ptf_status", { description: "Statuses" })
      yield* Metric.update(status, "503")
      yield* Metric.update(status, "200")
      yield* Metric.update(status, "200")
      expect(yield* renderOnly("ptf_status")).toBe(
        [
          "# HELP ptf_status_total Statuses",
          "# TYPE ptf_status_total counter",
          "ptf_status_total{key=\"200\"} 2",
          "ptf_status_total{key=\"503\"} 1",
          ""
        ].join("\n")
      )
    }))

  it.effect("escapes label values and help text, and sanitises metric and label names", () =>
    Effect.gen(function*() {
      const depth = Metric.gauge("9pte.queue-depth", { description: "Depth \\ of \"queue\"\nsecond line" })
      yield* Metric.set(Metric.tagged(depth, "http.path", "a\\b\"c\nd"), 2)
      expect(yield* renderOnly("9pte.queue-depth")).toBe(
        [
          "# HELP _9pte_queue_depth Depth \\\\ of \"queue\"\\nsecond line",
          "# TYPE _9pte_queue_depth gauge",
          "_9pte_queue_depth{http_path=\"a\\\\b\\\"c\\nd\"} 2",
          ""
        ].join("\n")
      )
    }))

  it.effect("sorts families by name, series by labels and labels by name, whatever the registration order", () =>
    Effect.gen(function*() {
      const b = Metric.gauge("pto_b")
      const a = Metric.gauge("pto_a")
      yield* Metric.set(Metric.tagged(b, "zone", "z2"), 1)
      yield* Metric.set(Metric.tagged(Metric.tagged(a, "zone", "z2"), "app", "x"), 2)
      yield* Metric.set(Metric.tagged(Metric.tagged(a, "zone", "z1"), "app", "x"), 3)
      yield* Metric.set(Metric.tagged(b, "zone", "z1"), 4)
      expect(yield* renderOnly("pto_b", "pto_a")).toBe(
        [
          "# TYPE pto_a gauge",
          "pto_a{app=\"x\",zone=\"z1\"} 3",
          "pto_a{app=\"x\",zone=\"z2\"} 2",
          "# TYPE pto_b gauge",
          "pto_b{zone=\"z1\"} 4",
          "pto_b{zone=\"z2\"} 1",
          ""
        ].join("\n")
      )
    }))

  it("renders nothing for no metrics", () => {
    expect(renderPrometheus([])).toBe("")
  })
})

describe("renderPrometheus with series read at scrape time", () => {
  it.effect("merges scrape-time pairs into the registry's families: one HELP and TYPE, series sorted together", () =>
    Effect.gen(function*() {
      const phase = Metric.gauge("pts_phase", { description: "Phase now" })
      yield* Metric.set(Metric.tagged(Metric.tagged(phase, "component", "b"), "phase", "ready"), 1)
      const registered = (yield* Metric.snapshot).filter((pair) => pair.metricKey.name === "pts_phase")
      const key = MetricKey.gauge("pts_phase", { description: "Phase now" })
      const scraped = ["ready", "failed"].map((name) =>
        MetricPair.unsafeMake(MetricKey.tagged(MetricKey.tagged(key, "component", "a"), "phase", name), MetricState.gauge(name === "ready" ? 0 : 1)))
      const cpu = MetricPair.unsafeMake(MetricKey.counter("pts_cpu_seconds_total"), MetricState.counter(1.25))
      expect(renderPrometheus([...scraped, cpu, ...registered])).toBe(
        [
          "# TYPE pts_cpu_seconds_total counter",
          "pts_cpu_seconds_total 1.25",
          "# HELP pts_phase Phase now",
          "# TYPE pts_phase gauge",
          "pts_phase{component=\"a\",phase=\"failed\"} 1",
          "pts_phase{component=\"a\",phase=\"ready\"} 0",
          "pts_phase{component=\"b\",phase=\"ready\"} 1",
          ""
        ].join("\n")
      )
    }))

  it("renders a gauge tagged quantile as a plain gauge series per quantile (the event-loop delay's shape)", () => {
    const key = MetricKey.gauge("pts_delay_seconds")
    const pairs = ["0.5", "0.99", "1"].map((quantile, i) =>
      MetricPair.unsafeMake(MetricKey.tagged(key, "quantile", quantile), MetricState.gauge(0.01 * (i + 1))))
    expect(renderPrometheus(pairs)).toBe(
      [
        "# TYPE pts_delay_seconds gauge",
        "pts_delay_seconds{quantile=\"0.5\"} 0.01",
        "pts_delay_seconds{quantile=\"0.99\"} 0.02",
        "pts_delay_seconds{quantile=\"1\"} 0.03",
        ""
      ].join("\n")
    )
  })
})

describe("prometheusSnapshot", () => {
  it.effect("renders the registry, filtered by Effect metric name prefix when asked", () =>
    Effect.gen(function*() {
      yield* Metric.increment(Metric.counter("ptp_one"))
      yield* Metric.increment(Metric.counter("ptq_other"))
      expect(yield* prometheusSnapshotWith({ prefix: "ptp_" })).toBe(
        "# TYPE ptp_one_total counter\nptp_one_total 1\n"
      )
      const everything = yield* prometheusSnapshot
      expect(everything).toContain("ptp_one_total 1\n")
      expect(everything).toContain("ptq_other_total 1\n")
    }))

  it("declares the 0.0.4 text content type", () => {
    expect(contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
  })
})
