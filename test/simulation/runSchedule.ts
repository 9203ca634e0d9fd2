/**
 * Runs one schedule against a fresh simulated host: the host starts, each step is applied and the
 * runtime settled, every invariant is checked after every step; then the host stops (with a hook
 * invocation and a hello in flight) and is checked until everything has ended and nothing runs.
 */
import { Cause, Effect, Exit, Option } from "effect"
import { type ModulePlan, wellBehavedModule } from "../../src/layers/host/ModuleClientSimulated.js"
import type { LaunchSpec } from "../../src/services/host/ProcessLauncher.js"
import { checkAll, invocationBoundMs, type Snapshot } from "./invariants.js"
import type { Phase } from "../../src/services/host/Component.js"
import type { CommandKind, CommandSeen, Ended, EndedHow, HelloSeen, HostStopSeen, InvocationSeen } from "./observations.js"
import { describeStep, type LaunchFault, type Schedule, type Step, type Target } from "./schedule.js"
import { buildWorld, type World, type WorldFiles } from "./world.js"

/** How a schedule went: passed (with a few figures), or the first step after which an invariant failed. */
export type RunOutcome =
  | { readonly ok: true; readonly launches: number; readonly virtualMs: number }
  | { readonly ok: false; readonly step: number; readonly violations: ReadonlyArray<string>; readonly story: ReadonlyArray<string> }

/** How long the host's stop is given (virtual), checked every `drainTickMs`. */
const drainWithinMs = 40_000
const drainTickMs = 250

const howOf = <A, E>(exit: Exit.Exit<A, E>): EndedHow =>
  Exit.isSuccess(exit) ? "ok" : Cause.isInterruptedOnly(exit.cause) ? "interrupted" : Cause.isFailure(exit.cause) ? "failed" : "died"

/** Forks `effect` on the world's runtime and records how and when it ended with `record`. */
const tracked = <A, E, V>(world: World, effect: Effect.Effect<A, E>, value: (a: A) => V, record: (ended: Ended<V>) => void) =>
  world.runtime.fork(Effect.flatMap(Effect.exit(effect), (exit) =>
    Effect.sync(() =>
      record({
        seq: world.seen.next(),
        at: world.runtime.now(),
        how: howOf(exit),
        value: Exit.isSuccess(exit) ? value(exit.value) : undefined,
        detail: Exit.isSuccess(exit) ? "" : Cause.pretty(exit.cause).split("\n")[0] ?? ""
      })
    )))

const command = <A, E>(world: World, kind: CommandKind, component: string | null, effect: Effect.Effect<A, E>, phase: (a: A) => Phase | undefined) => {
  const seen: CommandSeen = { kind, component, seq: world.seen.next(), at: world.runtime.now(), done: null }
  world.seen.commands.push(seen)
  tracked(world, effect, phase, (ended) => {
    seen.done = ended
  })
}

const targetOf = (name: string): Target | undefined =>
  name.startsWith("backend ") ? "backend" : name === "middleware.a" || name === "middleware.b" || name === "middleware.c" ? name : undefined

/** The newest live process of `target`, if any. */
const currentPid = (world: World, target: Target) =>
  Effect.map(world.processes.table, (table) =>
    Option.fromNullable([...table].reverse().find((p) => p.alive && p.parent === null && targetOf(p.name) === target)?.pid))

const onCurrent = (world: World, target: Target, act: (pid: number) => Effect.Effect<unknown>) =>
  world.runtime.fork(Effect.flatMap(currentPid(world, target), Option.match({ onNone: () => Effect.void, onSome: (pid) => Effect.asVoid(act(pid)) })))

const invoke = (world: World, deadlineMs: number | null) => {
  const seen: InvocationSeen = { seq: world.seen.next(), at: world.runtime.now(), boundMs: invocationBoundMs, done: null }
  world.seen.invocations.push(seen)
  const envelope = { id: `e${seen.seq}`, hook: "ingress", subject: "user:sim", payload: {}, ...(deadlineMs === null ? {} : { deadline_ms: deadlineMs }) }
  tracked(world, world.hooks.invoke("ingress", envelope), (result) => result.decision.decision, (ended) => {
    seen.done = ended
  })
}

const hello = (world: World, burst: number, backendAlive: boolean) => {
  const earlierPending = world.seen.hellos.some((h) => h.done === null && h.burst !== burst)
  const seen: HelloSeen = { burst, seq: world.seen.next(), at: world.runtime.now(), backendAlive, earlierPending, done: null }
  world.seen.hellos.push(seen)
  tracked(world, world.registry.acquire("echo"), (a) => ({ launched: a.launched, instance: a.instance }), (ended) => {
    seen.done = ended
  })
}

/** Applies one step (a `Wait` moves the clock; everything else starts at the current instant). */
const apply = async (world: World, step: Step, index: number, faults: Map<Target, Array<LaunchFault>>) => {
  const { supervisor, processes, modules } = world
  switch (step._tag) {
    case "Wait":
      return world.runtime.advance(step.ms)
    case "Command":
      return command(world, step.kind, step.component, supervisor[step.kind](step.component), (view) => view.phase)
    case "Reload":
      world.runtime.fork(world.setConfig(step.variant))
      return command(world, "reload", null, world.reload.reload, () => undefined)
    case "Invoke":
      for (let i = 0; i < step.count; i++) invoke(world, step.deadlineMs)
      return
    case "Hello": {
      const alive = snapshot(world, false).processes.some((p) => p.alive && p.parent === null && targetOf(p.name) === "backend")
      for (let i = 0; i < step.count; i++) hello(world, index, alive)
      return
    }
    case "Crash":
      return onCurrent(world, step.target, (pid) => processes.crash(pid, step.code))
    case "IgnoreTerm":
      return onCurrent(world, step.target, (pid) => processes.ignoreTerm(pid))
    case "Hang":
      return onCurrent(world, step.target, (pid) =>
        Effect.zipRight(
          processes.ignoreTerm(pid),
          modules.change(pid, { readyAfterMs: null, init: { _tag: "Silent" }, invoke: { _tag: "Silent" }, health: { _tag: "Silent" } })
        ))
    case "SpawnChild":
      return onCurrent(world, step.target, (pid) => processes.spawnChild(pid))
    case "Misbehave":
      return onCurrent(world, step.target, (pid) => modules.change(pid, { [step.call]: step.answer }))
    case "NextLaunch":
      faults.set(step.target, [...(faults.get(step.target) ?? []), ...Array.from({ length: step.times }, () => step.fault)])
      return
  }
}

/** Queued launch faults become the plans of the next launches of their target. */
const scriptFaults = (world: World, faults: Map<Target, Array<LaunchFault>>) => {
  const modulePlans = new WeakMap<LaunchSpec, ModulePlan>()
  world.runtime.runNow(Effect.zipRight(
    world.processes.scriptProcess((spec) => {
      const target = targetOf(spec.name)
      const fault = target === undefined ? undefined : faults.get(target)?.shift()
      if (fault === undefined) return {}
      modulePlans.set(spec, { ...wellBehavedModule, readyAfterMs: fault.readyAfterMs, init: fault.init })
      return {
        startDelayMs: fault.startDelayMs,
        ignoresTerm: fault.ignoresTerm,
        children: fault.children,
        ...(fault.exitAfter === null ? {} : { exitAfter: { afterMs: fault.exitAfter.afterMs, exit: { code: fault.exitAfter.code, signal: null } } })
      }
    }),
    world.modules.scriptModules((launch) => modulePlans.get(launch.spec) ?? wellBehavedModule)
  ))
}

const snapshot = (world: World, hostStopped: boolean): Snapshot => ({
  now: world.runtime.now(),
  hostStopped,
  ...world.runtime.runNow(Effect.all({ views: world.supervisor.list, processes: world.processes.table, backends: world.registry.snapshot }))
})

/** Stops the host of a run that already failed, without checking anything (bounded in virtual time). */
const stopQuietly = async (world: World) => {
  const stopping = world.runtime.fork(world.stopHost)
  for (let waited = 0; waited <= drainWithinMs && stopping.unsafePoll() === null; waited += drainTickMs) await world.runtime.advance(drainTickMs)
}

/** Runs `schedule` on a fresh host built from `files`. */
export const runSchedule = async (files: WorldFiles, schedule: Schedule): Promise<RunOutcome> => {
  const world = await buildWorld(files, schedule.seed)
  const faults = new Map<Target, Array<LaunchFault>>()
  scriptFaults(world, faults)
  const story: Array<string> = ["host start"]
  const check = async (index: number, hostStopped = false): Promise<RunOutcome | undefined> => {
    const violations = checkAll(world.seen, snapshot(world, hostStopped))
    if (violations.length === 0) return undefined
    // Stopped all the same, so a failing run (shrinking makes hundreds) leaves no socket or fiber behind.
    if (world.seen.hostStop === null) await stopQuietly(world)
    return { ok: false, step: index, violations, story }
  }
  command(world, "host-start", null, world.supervisor.startAll, () => undefined)
  await world.runtime.settle()
  const started = await check(0)
  if (started !== undefined) return started
  for (const [i, step] of schedule.steps.entries()) {
    story.push(`${describeStep(step)}  (at t=${Math.round(world.runtime.now() - (world.seen.commands[0]?.at ?? 0))}ms)`)
    await apply(world, step, i + 1, faults)
    await world.runtime.settle()
    const failed = await check(i + 1)
    if (failed !== undefined) return failed
  }
  // The drain: requests in flight when the host stops must still be answered.
  story.push("host stop, with an invocation and a hello in flight")
  invoke(world, null)
  hello(world, schedule.steps.length + 1, true)
  const stopping: HostStopSeen = { seq: world.seen.next(), at: world.runtime.now(), done: null }
  world.seen.hostStop = stopping
  tracked(world, world.stopHost, () => undefined, (ended) => {
    stopping.done = ended
  })
  const last = schedule.steps.length + 1
  for (let waited = 0; waited <= drainWithinMs; waited += drainTickMs) {
    await world.runtime.settle()
    const everythingEnded = stopping.done !== null && world.seen.invocations.every((i) => i.done !== null) &&
      world.seen.hellos.every((h) => h.done !== null) && world.seen.commands.every((c) => c.done !== null)
    const failed = await check(last, stopping.done !== null)
    if (failed !== undefined) return failed
    if (everythingEnded) {
      const launches = snapshot(world, true).processes.filter((p) => p.parent === null).length
      return { ok: true, launches, virtualMs: world.runtime.now() - (world.seen.commands[0]?.at ?? 0) }
    }
    await world.runtime.advance(drainTickMs)
  }
  return { ok: false, step: last, violations: [`the host stop or a request in flight had not ended ${drainWithinMs} ms after the stop began`], story }
}

