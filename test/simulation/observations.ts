/**
 * What a simulation run saw, in order: every lifecycle event, every call that reached a module (with
 * the phase of its component at that instant), every operator command, hook invocation and broker
 * hello with when it was issued and how and when it ended. Invariants are checked on this record.
 * Each entry has a sequence number shared by all kinds, so "while a reload was under way" is exact.
 */
import type { ModuleCallRecord } from "../../src/layers/host/ModuleClientSimulated.js"
import type { Phase } from "../../src/services/host/Component.js"
import type { LifecycleEvent } from "../../src/services/host/Traces.js"

/** One lifecycle event, as traced. */
export interface LifecycleSeen {
  readonly seq: number
  readonly at: number
  readonly event: LifecycleEvent
}

/** One call that reached a module process, with its component's phase and pid at that instant. */
export interface CallSeen {
  readonly seq: number
  readonly call: ModuleCallRecord
  readonly phase: Phase | "unknown"
  readonly currentPid: number | null
}

/** How an operation ended: with its value, a typed failure, a defect, or interrupted. */
export type EndedHow = "ok" | "failed" | "died" | "interrupted"

/** How and when an operation ended. */
export interface Ended<A> {
  readonly seq: number
  readonly at: number
  readonly how: EndedHow
  /** What it returned (when `ok`). */
  readonly value: A | undefined
  /** The failure, defect or interruption, in words (empty when `ok`). */
  readonly detail: string
}

/** What the operator does. */
export type CommandKind = "start" | "stop" | "restart" | "reload" | "host-start"

/** One operator command. */
export interface CommandSeen {
  readonly kind: CommandKind
  /** The component it names (null for a reload and the host start). */
  readonly component: string | null
  readonly seq: number
  readonly at: number
  /** The phase it left the component in (for start, stop and restart). */
  done: Ended<Phase | undefined> | null
}

/** One hook invocation (an accepted request). */
export interface InvocationSeen {
  readonly seq: number
  readonly at: number
  /** It must be answered within this many ms. */
  readonly boundMs: number
  done: Ended<string> | null
}

/** One broker hello; hellos issued in one step form a burst. */
export interface HelloSeen {
  readonly burst: number
  readonly seq: number
  readonly at: number
  /** A backend process of the service was alive when it was issued. */
  readonly backendAlive: boolean
  /** A hello of an earlier burst was still unanswered when it was issued. */
  readonly earlierPending: boolean
  done: Ended<{ readonly launched: boolean; readonly instance: string }> | null
}

/** The host's stop (the end of every schedule). */
export interface HostStopSeen {
  readonly seq: number
  readonly at: number
  done: Ended<void> | null
}

/** Everything one run saw. */
export interface Observations {
  readonly lifecycle: Array<LifecycleSeen>
  readonly calls: Array<CallSeen>
  readonly commands: Array<CommandSeen>
  readonly invocations: Array<InvocationSeen>
  readonly hellos: Array<HelloSeen>
  hostStop: HostStopSeen | null
  /** The next sequence number. */
  readonly next: () => number
}

/** An empty record. */
export const makeObservations = (): Observations => {
  let seq = 0
  return { lifecycle: [], calls: [], commands: [], invocations: [], hellos: [], hostStop: null, next: () => seq++ }
}
