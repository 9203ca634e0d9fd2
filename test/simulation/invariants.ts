/**
 * The invariants a simulated host must keep, one check each, run after every step of every schedule
 * on what the run saw (`Observations`) and the state now (`Snapshot`). Each returns the violations it
 * found, in words that name the component, the time and what was expected.
 */
import type { SimulatedProcessEntry } from "../../src/layers/host/launcher/ProcessLauncherSimulated.js"
import type { BackendSnapshot } from "../../src/services/broker/BackendRegistry.js"
import { type ComponentView, isRoutable, type Phase } from "../../src/services/host/Component.js"
import type { CommandSeen, Observations } from "./observations.js"
import { requestTimeoutMs, restartPolicy, startupTimeoutMs, stopTimeoutMs } from "./simulatedConfig.js"

/** The host as it is now. */
export interface Snapshot {
  readonly now: number
  readonly views: ReadonlyArray<ComponentView>
  readonly processes: ReadonlyArray<SimulatedProcessEntry>
  readonly backends: ReadonlyArray<BackendSnapshot>
  /** The host's stop has finished. */
  readonly hostStopped: boolean
}

/** One invariant: the violations it finds. */
export type Invariant = (seen: Observations, now: Snapshot) => ReadonlyArray<string>

/** Virtual time as the printout shows it: ms since the run began. */
const t = (at: number, start: number) => `t=${Math.round((at - start) * 1000) / 1000}ms`
const startOf = (seen: Observations, now: Snapshot) => seen.commands[0]?.at ?? now.now

/** Every invocation that reached a module arrived while its component was `ready` or `degraded`, at its current process. */
export const routedOnlyWhenRoutable: Invariant = (seen, now) =>
  seen.calls.flatMap((c) =>
    c.call.kind !== "invoke" || (c.phase !== "unknown" && isRoutable(c.phase) && c.currentPid === c.call.pid)
      ? []
      : [`${t(c.call.at, startOf(seen, now))}: an invocation reached ${c.call.component} (pid ${c.call.pid}) while it was ${c.phase} (its process: ${c.currentPid})`]
  )

/**
 * Automatic restarts of a component never exceed `max_restarts` in any `window_sec` (counted at each
 * decision, as the budget counts them), after the last operator start, reload or stable run.
 */
export const restartsWithinBudget: Invariant = (seen, now) => {
  const windowMs = restartPolicy.window_sec * 1_000
  const stableMs = restartPolicy.stable_after_sec * 1_000
  const byComponent = new Map<string, { decisions: Array<number>; upSince: number | null }>()
  const violations: Array<string> = []
  for (const { at, event } of seen.lifecycle) {
    const state = byComponent.get(event.component) ?? { decisions: [], upSince: null }
    byComponent.set(event.component, state)
    if (event.to === "starting" && (event.from === "configured" || event.from === "stopped" || event.from === "failed")) {
      state.decisions = []
      state.upSince = null
    } else if (event.to === "ready" && event.from === "starting") {
      state.upSince = at
    } else if (event.to === "starting") {
      if (state.upSince !== null && at - state.upSince >= stableMs) state.decisions = []
      state.decisions = [...state.decisions.filter((d) => at - d < windowMs), at]
      state.upSince = null
      if (state.decisions.length > restartPolicy.max_restarts) {
        violations.push(
          `${t(at, startOf(seen, now))}: ${event.component} restarted ${state.decisions.length} times within ${restartPolicy.window_sec} s ` +
            `(max_restarts ${restartPolicy.max_restarts}): ${event.reason}`
        )
      }
    } else if (event.to !== "degraded" && event.to !== "ready") {
      state.upSince = null
    }
  }
  return violations
}

/** An operator command (or a reload) was under way at sequence number `seq`. */
const operatorUnderWay = (seen: Observations, component: string, seq: number) =>
  seen.commands.some((c) =>
    (c.kind === "reload" || (c.component === component && (c.kind === "start" || c.kind === "restart"))) &&
    c.seq < seq && (c.done === null || c.done.seq > seq)
  )

/** A component leaves `failed` only through an operator start or restart (or a reload). */
export const failedLeftOnlyByOperator: Invariant = (seen, now) =>
  seen.lifecycle.flatMap(({ at, event, seq }) =>
    event.from !== "failed" || event.to === "failed" || operatorUnderWay(seen, event.component, seq)
      ? []
      : [`${t(at, startOf(seen, now))}: ${event.component} left failed for ${event.to} with no operator action: ${event.reason}`]
  )

/** How long a command may take once every command before it on its component (and every reload) is done. */
const boundOf = (c: CommandSeen): number =>
  c.kind === "reload" || c.kind === "host-start" ? 2 * (startupTimeoutMs + 5_000 + 1_500) + 2 * stopTimeoutMs : stopTimeoutMs + 1

/** When `c` had the component to itself: undefined while a command before it on the same component, or a reload, is under way. */
const armedAt = (seen: Observations, c: CommandSeen): number | undefined => {
  let at = c.at
  for (const earlier of seen.commands) {
    if (earlier.seq >= c.seq) break
    const blocks = earlier.kind === "reload" || earlier.kind === "host-start" || earlier.component === c.component || c.kind === "reload" ||
      c.kind === "host-start"
    if (!blocks) continue
    if (earlier.done === null) return undefined
    at = Math.max(at, earlier.done.at)
  }
  return at
}

/** Every command ends within its bound (a stop within `stop_timeout_ms`), never by a defect, and a stop leaves `stopped` or `failed`. */
export const commandsEndWithinBound: Invariant = (seen, now) =>
  seen.commands.flatMap((c) => {
    const what = `${c.kind}${c.component === null ? "" : ` ${c.component}`} issued at ${t(c.at, startOf(seen, now))}`
    const armed = armedAt(seen, c)
    if (armed === undefined) return []
    const deadline = armed + boundOf(c)
    if (c.done === null) return now.now > deadline ? [`${what} has not ended ${Math.round(now.now - armed)} ms after it had its turn`] : []
    const problems: Array<string> = []
    if (c.done.at > deadline) problems.push(`${what} took ${Math.round(c.done.at - armed)} ms after it had its turn (bound ${boundOf(c)} ms)`)
    // The host's stop interrupts a command still under way (HostReload says so): only an interruption before it is wrong.
    const stopBegan = seen.hostStop !== null && c.done.seq > seen.hostStop.seq
    if (c.done.how === "died" || (c.done.how === "interrupted" && !stopBegan)) problems.push(`${what} ${c.done.how}: ${c.done.detail}`)
    if (c.kind === "stop" && c.done.how === "ok" && c.done.value !== "stopped" && c.done.value !== "failed") {
      problems.push(`${what} left the component ${String(c.done.value)}, not stopped or failed`)
    }
    return problems
  })

const alivePhases: ReadonlySet<Phase> = new Set(["starting", "ready", "degraded", "stopping"])

/** No simulated process outlives its component (or its backend's registry entry), nor the host. */
export const noProcessOutlivesItsOwner: Invariant = (_seen, now) =>
  now.processes.flatMap((p) => {
    if (!p.alive) return []
    if (now.hostStopped) return [`pid ${p.pid} (${p.name}) is still running after the host stopped`]
    if (p.parent !== null) {
      return now.processes.some((q) => q.pid === p.leader && q.alive) ? [] : [`pid ${p.pid}, a child of ${p.name}, outlived its process ${p.leader}`]
    }
    if (p.name.startsWith("backend ")) {
      return now.backends.some((b) => b.pid === p.pid) ? [] : [`backend pid ${p.pid} (${p.name}) runs but the registry does not know it`]
    }
    const view = now.views.find((v) => v.id === p.name)
    if (view === undefined) return [`pid ${p.pid} of ${p.name} runs but the component is no longer configured`]
    return alivePhases.has(view.phase) && view.pid === p.pid ? [] : [`pid ${p.pid} of ${p.name} runs while it is ${view.phase} with pid ${view.pid}`]
  })

/** Concurrent hellos of one burst launch at most one backend, share one instance, and launch exactly one when none ran. */
export const oneLaunchPerHelloBurst: Invariant = (seen, now) => {
  const bursts = new Map<number, typeof seen.hellos>()
  for (const hello of seen.hellos) bursts.set(hello.burst, [...(bursts.get(hello.burst) ?? []), hello])
  return [...bursts.values()].flatMap((hellos) => {
    const first = hellos[0]
    if (first === undefined || hellos.some((h) => h.done === null)) return []
    const answers = hellos.flatMap((h) => (h.done?.how === "ok" && h.done.value !== undefined ? [h.done.value] : []))
    const launched = answers.filter((a) => a.launched).length
    const instances = new Set(answers.map((a) => a.instance))
    const what = `the burst of ${hellos.length} hellos at ${t(first.at, startOf(seen, now))}`
    const problems: Array<string> = []
    if (launched > 1) problems.push(`${what} launched ${launched} backends`)
    if (instances.size > 1) problems.push(`${what} got ${instances.size} different instances: ${[...instances].join(", ")}`)
    if (!first.backendAlive && !first.earlierPending && answers.length === hellos.length && launched !== 1) {
      problems.push(`${what} found no backend, all succeeded, and ${launched} said they launched one`)
    }
    return problems
  })
}

/** Bound on a hello: a launch's readiness (2 s), its stop (3 s), tried up to three times. */
export const helloBoundMs = 3 * (2_000 + 3_000) + 1_000

/** Every accepted hook invocation is answered (a decision, never a defect or an interruption) within its bound, during a drain too; every hello too. */
export const everyRequestAnswered: Invariant = (seen, now) => {
  const start = startOf(seen, now)
  const invocations = seen.invocations.flatMap((i) => {
    if (i.done === null) return now.now - i.at > i.boundMs ? [`the invocation issued at ${t(i.at, start)} has no answer after ${i.boundMs} ms`] : []
    if (i.done.how !== "ok") return [`the invocation issued at ${t(i.at, start)} ${i.done.how}: ${i.done.detail}`]
    return i.done.at - i.at > i.boundMs ? [`the invocation issued at ${t(i.at, start)} took ${Math.round(i.done.at - i.at)} ms (bound ${i.boundMs})`] : []
  })
  const hellos = seen.hellos.flatMap((h) => {
    if (h.done === null) return now.now - h.at > helloBoundMs ? [`the hello issued at ${t(h.at, start)} has no answer after ${helloBoundMs} ms`] : []
    if (h.done.how === "died" || h.done.how === "interrupted") return [`the hello issued at ${t(h.at, start)} ${h.done.how}: ${h.done.detail}`]
    return h.done.at - h.at > helloBoundMs ? [`the hello issued at ${t(h.at, start)} took ${Math.round(h.done.at - h.at)} ms`] : []
  })
  return [...invocations, ...hellos]
}

/** Invocation bound: every step of the longest chain at its request timeout, and a little. */
export const invocationBoundMs = 3 * requestTimeoutMs + 50

/** The phase changes the design allows (a change to the same phase is news, not a change, and always allowed). */
const allowed: Readonly<Record<Phase, ReadonlyArray<Phase>>> = {
  // `stopped`: an operator stop of a component not started yet (waiting in a start wave for its dependencies).
  configured: ["starting", "failed", "stopped"],
  starting: ["ready", "failed", "stopping"],
  ready: ["degraded", "starting", "failed", "stopped", "stopping"],
  degraded: ["ready", "starting", "failed", "stopped", "stopping"],
  stopping: ["stopped"],
  stopped: ["starting", "failed"],
  failed: ["starting"]
}

/**
 * The lifecycle trace is consistent: each event starts from the phase the one before ended in (a
 * reload's fresh entry starts from `configured`), follows the phase graph, and the last one is the
 * phase the supervisor shows; a `failed` component says why.
 */
export const traceConsistentWithPhases: Invariant = (seen, now) => {
  const start = startOf(seen, now)
  const last = new Map<string, Phase>()
  const lastSeq = new Map<string, number>()
  const problems: Array<string> = []
  for (const { at, event, seq } of seen.lifecycle) {
    const before = last.get(event.component) ?? "configured"
    const fresh = event.from === "configured" && seen.commands.some((c) => c.kind === "reload" && c.seq < seq && (c.done === null || c.done.seq > seq))
    if (event.from !== before && !fresh) {
      problems.push(`${t(at, start)}: ${event.component} ${event.from} → ${event.to}, but its last event ended in ${before}`)
    }
    if (event.from !== event.to && !allowed[event.from].includes(event.to)) {
      problems.push(`${t(at, start)}: ${event.component} went ${event.from} → ${event.to}, which the phase graph does not allow (${event.reason})`)
    }
    last.set(event.component, event.to)
    lastSeq.set(event.component, seq)
  }
  for (const view of now.views) {
    const traced = last.get(view.id) ?? "configured"
    // A reload that replaces a component's entry leaves it `configured` until it starts, with no event.
    const replaced = view.phase === "configured" && seen.commands.some((c) =>
      c.kind === "reload" && (c.done === null || c.done.seq > (lastSeq.get(view.id) ?? -1))
    )
    if (traced !== view.phase && !replaced) problems.push(`${view.id} is ${view.phase} but its trace ends in ${traced}`)
    if (view.phase === "failed" && (view.last_error ?? "") === "") problems.push(`${view.id} is failed and says no reason`)
  }
  return problems
}

/** Every invariant, by name. */
export const invariants: Readonly<Record<string, Invariant>> = {
  routedOnlyWhenRoutable,
  restartsWithinBudget,
  failedLeftOnlyByOperator,
  commandsEndWithinBound,
  noProcessOutlivesItsOwner,
  oneLaunchPerHelloBurst,
  everyRequestAnswered,
  traceConsistentWithPhases
}

/** Every violation now, each prefixed with its invariant's name. */
export const checkAll = (seen: Observations, now: Snapshot): ReadonlyArray<string> =>
  Object.entries(invariants).flatMap(([name, check]) => check(seen, now).map((violation) => `${name}: ${violation}`))
