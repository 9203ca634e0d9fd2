import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Ref } from "effect"
import { componentPhasePairs, renderHostMetrics, withHostMetrics } from "../../../src/layers/host/HostMetrics.js"
import { prometheusSnapshotWith, renderPrometheus } from "../../../src/layers/system/PrometheusText.js"
import { type InvocationRecord, type LifecycleEvent, TraceLog } from "../../../src/services/host/Traces.js"
import { parseSamples } from "../../support/prometheusText.js"

// The metric registry is global to the test file: each test uses its own component and hook names.
const hostSamples = Effect.map(prometheusSnapshotWith({ prefix: "corral_" }), parseSamples)

const lifecycle = (component: string, from: LifecycleEvent["from"], to: LifecycleEvent["to"]): LifecycleEvent => ({
  at: "2024-01-01T00:00:00.000Z",
  component,
  from,
  to,
  reason: "test",
  pid: null
})

const invocation = (hook: string, decision: "allow" | "deny", steps: InvocationRecord["steps"]): InvocationRecord => ({
  at: "2024-01-01T00:00:00.000Z",
  hook,
  envelope_id: "env",
  subject: "user:1",
  decision: decision === "allow" ? { decision: "allow" } : { decision: "deny", reason: "no" },
  failure_policy: "fail_closed",
  steps,
  duration_ms: 10
})

/** A trace log that only counts what it was handed, wrapped by `withHostMetrics`. */
const meteredTraceLog = Effect.gen(function*() {
  const written = yield* Ref.make(0)
  const inner = Layer.succeed(TraceLog, {
    lifecycle: () => Ref.update(written, (n) => n + 1),
    invocation: () => Ref.update(written, (n) => n + 1)
  })
  const context = yield* Layer.build(withHostMetrics(inner))
  return { log: Context.get(context, TraceLog), written: Ref.get(written) }
})

describe("withHostMetrics", () => {
  it.scoped("counts hook runs by decision, steps by outcome, and times the steps that ran", () =>
    Effect.gen(function*() {
      const { log, written } = yield* meteredTraceLog
      yield* log.invocation(invocation("hm-ingress", "allow", [
        { component: "hm.a", outcome: "allow", duration_ms: 3 },
        { component: "hm.b", outcome: "modify", duration_ms: 40 }
      ]))
      yield* log.invocation(invocation("hm-ingress", "deny", [
        { component: "hm.a", outcome: "deny", duration_ms: 2 },
        { component: "hm.b", outcome: "skipped", duration_ms: 0 }
      ]))
      expect(yield* written).toBe(2)
      const samples = yield* hostSamples
      expect(samples.get(`corral_hook_invocations_total{hook="hm-ingress",outcome="allow"}`)).toBe(1)
      expect(samples.get(`corral_hook_invocations_total{hook="hm-ingress",outcome="deny"}`)).toBe(1)
      expect(samples.get(`corral_hook_steps_total{component="hm.a",hook="hm-ingress",outcome="allow"}`)).toBe(1)
      expect(samples.get(`corral_hook_steps_total{component="hm.a",hook="hm-ingress",outcome="deny"}`)).toBe(1)
      expect(samples.get(`corral_hook_steps_total{component="hm.b",hook="hm-ingress",outcome="modify"}`)).toBe(1)
      expect(samples.get(`corral_hook_steps_total{component="hm.b",hook="hm-ingress",outcome="skipped"}`)).toBe(1)
      // hm.b ran once (40 ms); its skipped step has no duration.
      expect(samples.get(`corral_hook_step_duration_seconds_count{component="hm.b",hook="hm-ingress"}`)).toBe(1)
      expect(samples.get(`corral_hook_step_duration_seconds_sum{component="hm.b",hook="hm-ingress"}`)).toBeCloseTo(0.04)
      expect(samples.get(`corral_hook_step_duration_seconds_bucket{component="hm.b",hook="hm-ingress",le="0.025"}`)).toBe(0)
      expect(samples.get(`corral_hook_step_duration_seconds_bucket{component="hm.b",hook="hm-ingress",le="0.05"}`)).toBe(1)
      expect(samples.get(`corral_hook_step_duration_seconds_count{component="hm.a",hook="hm-ingress"}`)).toBe(2)
    }))

  it.scoped("counts every start after the first as a restart, not the first start nor other phase changes", () =>
    Effect.gen(function*() {
      const { log } = yield* meteredTraceLog
      const changes: ReadonlyArray<[LifecycleEvent["from"], LifecycleEvent["to"]]> = [
        ["configured", "starting"],
        ["starting", "ready"],
        ["ready", "starting"], // crashed, restarted by the policy
        ["starting", "ready"],
        ["ready", "stopping"],
        ["stopping", "stopped"],
        ["stopped", "starting"], // an operator start
        ["starting", "failed"]
      ]
      yield* Effect.forEach(changes, ([from, to]) => log.lifecycle(lifecycle("hm.restarted", from, to)), { discard: true })
      expect((yield* hostSamples).get(`corral_component_restarts_total{component="hm.restarted"}`)).toBe(2)
    }))
})

describe("renderHostMetrics", () => {
  it("renders one 0/1 phase gauge per phase per component", () => {
    expect(renderPrometheus(componentPhasePairs([{ id: "hm.one", phase: "degraded" }]))).toBe(
      [
        "# HELP corral_component_phase 1 for the phase each component is in, 0 for the others",
        "# TYPE corral_component_phase gauge",
        "corral_component_phase{component=\"hm.one\",phase=\"configured\"} 0",
        "corral_component_phase{component=\"hm.one\",phase=\"degraded\"} 1",
        "corral_component_phase{component=\"hm.one\",phase=\"failed\"} 0",
        "corral_component_phase{component=\"hm.one\",phase=\"ready\"} 0",
        "corral_component_phase{component=\"hm.one\",phase=\"starting\"} 0",
        "corral_component_phase{component=\"hm.one\",phase=\"stopped\"} 0",
        "corral_component_phase{component=\"hm.one\",phase=\"stopping\"} 0",
        ""
      ].join("\n")
    )
  })

  it.effect("shows each component's restart count from the first scrape (0 before any restart) and only current components' phases", () =>
    Effect.gen(function*() {
      const first = parseSamples(yield* renderHostMetrics({ components: [{ id: "hm.fresh", phase: "ready" }], backends: [], process: [] }))
      expect(first.get(`corral_component_restarts_total{component="hm.fresh"}`)).toBe(0)
      expect(first.get(`corral_component_phase{component="hm.fresh",phase="ready"}`)).toBe(1)
      expect(first.get(`corral_broker_backends{state="live"}`)).toBe(0)
      // A reload removed hm.fresh: its phase series go with it.
      const later = parseSamples(yield* renderHostMetrics({ components: [], backends: [{ state: "live" }], process: [] }))
      expect([...later.keys()].filter((series) => series.startsWith("corral_component_phase{component=\"hm.fresh\""))).toEqual([])
      expect(later.get(`corral_broker_backends{state="live"}`)).toBe(1)
    }))
})
