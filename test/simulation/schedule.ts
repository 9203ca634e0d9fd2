/**
 * Schedules: what happens to a simulated host, step by step — virtual time passing, operator commands
 * (start, stop, restart, reload), hook invocations, bursts of broker hellos, and faults (a process that
 * crashes, hangs, ignores TERM or spawns children; a module that answers garbage, too much, slowly or
 * not at all; a next launch that starts late, dies at a given time or never becomes ready). The
 * fast-check arbitraries generate them and shrink a failing one toward the fewest, simplest steps.
 */
import * as fc from "fast-check"
import type { SimulatedAnswer } from "../../src/layers/host/ModuleClientSimulated.js"
import { type ComponentId, componentIds, type ConfigVariant, configVariants } from "./simulatedConfig.js"

/** What a fault acts on: a component's current process, or the broker's backend. */
export type Target = ComponentId | "backend"

/** How the next launch of a target behaves (process and module together). */
export interface LaunchFault {
  readonly startDelayMs: number
  /** It exits on its own this long after it started, with this code; null: it runs until stopped. */
  readonly exitAfter: { readonly afterMs: number; readonly code: number } | null
  readonly ignoresTerm: boolean
  readonly children: number
  /** Its ready path (or a backend's endpoint) answers after this long; null: never. */
  readonly readyAfterMs: number | null
  readonly init: SimulatedAnswer
}

/** One step of a schedule. */
export type Step =
  | { readonly _tag: "Wait"; readonly ms: number }
  | { readonly _tag: "Command"; readonly kind: "start" | "stop" | "restart"; readonly component: ComponentId }
  | { readonly _tag: "Reload"; readonly variant: ConfigVariant }
  | { readonly _tag: "Invoke"; readonly count: number; readonly deadlineMs: number | null }
  | { readonly _tag: "Hello"; readonly count: number }
  | { readonly _tag: "Crash"; readonly target: Target; readonly code: number }
  | { readonly _tag: "IgnoreTerm"; readonly target: Target }
  | { readonly _tag: "Hang"; readonly target: Target }
  | { readonly _tag: "SpawnChild"; readonly target: Target }
  | { readonly _tag: "Misbehave"; readonly target: ComponentId; readonly call: "invoke" | "health"; readonly answer: SimulatedAnswer }
  /** The next `times` launches of `target` behave as `fault` says (a crash loop when it exits early). */
  | { readonly _tag: "NextLaunch"; readonly target: Target; readonly fault: LaunchFault; readonly times: number }

/** A whole schedule: the runtime's seed (jitter draws) and the steps after the host's start. */
export interface Schedule {
  readonly seed: number
  readonly steps: ReadonlyArray<Step>
}

const component = fc.constantFrom<ComponentId>(...componentIds)
const target = fc.constantFrom<Target>(...componentIds, "backend")

/** Answers, simplest first (shrinking goes toward `Correct`). */
const answer: fc.Arbitrary<SimulatedAnswer> = fc.oneof(
  fc.constant<SimulatedAnswer>({ _tag: "Correct" }),
  fc.constant<SimulatedAnswer>({ _tag: "Garbage" }),
  fc.constant<SimulatedAnswer>({ _tag: "TooMuch" }),
  fc.constantFrom(50, 300, 600, 2_000).map((delayMs): SimulatedAnswer => ({ _tag: "Slow", delayMs })),
  fc.constant<SimulatedAnswer>({ _tag: "Silent" }),
  fc.constantFrom(401, 500, 503).map((status): SimulatedAnswer => ({ _tag: "Status", status }))
)

const launchFault: fc.Arbitrary<LaunchFault> = fc.record({
  startDelayMs: fc.constantFrom(0, 20, 200, 1_500),
  exitAfter: fc.option(fc.record({ afterMs: fc.constantFrom(1, 50, 400, 1_200, 6_000), code: fc.constantFrom(1, 0, 137) }), { nil: null }),
  ignoresTerm: fc.boolean(),
  children: fc.constantFrom(0, 1, 2),
  readyAfterMs: fc.option(fc.constantFrom(0, 30, 500, 990, 1_500), { nil: null }),
  init: answer
})

/** Virtual time a `Wait` lets pass: from one tick to past every timeout and window of the config. */
const waitMs = fc.constantFrom(1, 10, 50, 150, 400, 1_000, 2_500, 6_000, 11_000)

/** One step; waits and commands are the commonest, as on a real host. */
export const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: waitMs.map((ms): Step => ({ _tag: "Wait", ms })) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constantFrom("start" as const, "stop" as const, "restart" as const), component }).map((c): Step => ({
      _tag: "Command",
      ...c
    }))
  },
  { weight: 1, arbitrary: fc.constantFrom(...configVariants).map((variant): Step => ({ _tag: "Reload", variant })) },
  {
    weight: 3,
    arbitrary: fc.record({ count: fc.integer({ min: 1, max: 3 }), deadlineMs: fc.option(fc.constantFrom(100, 1_000), { nil: null }) }).map((
      i
    ): Step => ({ _tag: "Invoke", ...i }))
  },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((count): Step => ({ _tag: "Hello", count })) },
  {
    weight: 2,
    arbitrary: fc.record({ target, code: fc.constantFrom(1, 0, 139) }).map((c): Step => ({ _tag: "Crash", ...c }))
  },
  { weight: 1, arbitrary: target.map((t): Step => ({ _tag: "IgnoreTerm", target: t })) },
  { weight: 1, arbitrary: target.map((t): Step => ({ _tag: "Hang", target: t })) },
  { weight: 1, arbitrary: target.map((t): Step => ({ _tag: "SpawnChild", target: t })) },
  {
    weight: 2,
    arbitrary: fc.record({ target: component, call: fc.constantFrom("invoke" as const, "health" as const), answer }).map((m): Step => ({
      _tag: "Misbehave",
      ...m
    }))
  },
  { weight: 3, arbitrary: fc.record({ target, fault: launchFault, times: fc.integer({ min: 1, max: 4 }) }).map((n): Step => ({ _tag: "NextLaunch", ...n })) }
)

/** A schedule of up to `maxSteps` steps. */
export const schedule = (maxSteps: number): fc.Arbitrary<Schedule> =>
  fc.record({ seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }), steps: fc.array(step, { maxLength: maxSteps }) })

/** A step in one line, for a failing schedule's printout. */
export const describeStep = (s: Step): string => {
  switch (s._tag) {
    case "Wait":
      return `wait ${s.ms} ms`
    case "Command":
      return `${s.kind} ${s.component}`
    case "Reload":
      return `reload to ${s.variant}`
    case "Invoke":
      return `invoke ingress ×${s.count}${s.deadlineMs === null ? "" : ` (deadline_ms ${s.deadlineMs})`}`
    case "Hello":
      return `hello echo ×${s.count}`
    case "Crash":
      return `crash ${s.target} (exit ${s.code})`
    case "IgnoreTerm":
      return `${s.target} ignores TERM`
    case "Hang":
      return `${s.target} hangs (silent, ignores TERM)`
    case "SpawnChild":
      return `${s.target} spawns a child`
    case "Misbehave":
      return `${s.target} answers ${s.call} with ${JSON.stringify(s.answer)}`
    case "NextLaunch":
      return `next ${s.times === 1 ? "launch" : `${s.times} launches`} of ${s.target}: ${JSON.stringify(s.fault)}`
  }
}
