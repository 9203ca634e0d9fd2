/**
 * Reconcile and the operator's command semantics (simulated processes, TestClock): a reload starts added
 * components, stops removed ones (gone from the list), restarts changed ones and leaves the rest alone
 * with the same pid; `settled` waits for a phase that stays; impossible transitions are refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Ref, TestClock } from "effect"
import { awaitPhase, configOf, simulatedComponent, simulatedSupervisor } from "../../../support/simulatedSupervisor.js"

const quiet = Logger.replace(Logger.defaultLogger, Logger.make(() => {}))

const before = configOf({
  "app.keep": { ...simulatedComponent, module_id: "keep" },
  "app.change": simulatedComponent,
  "app.drop": simulatedComponent,
  "app.idle": simulatedComponent
})

const pidOf = (views: ReadonlyArray<{ readonly id: string; readonly pid: number | null }>, id: string) => views.find((view) => view.id === id)?.pid

describe("reconcile (simulated processes, TestClock)", () => {
  it.scoped("adds, removes, restarts what changed and leaves the rest running with the same pid", () =>
    Effect.gen(function*() {
      const { supervisor, control, trace } = yield* simulatedSupervisor(before)
      yield* supervisor.startAll
      yield* supervisor.stop("app.idle")
      const was = yield* supervisor.list
      const dropPid = pidOf(was, "app.drop")

      const outcome = yield* supervisor.reconcile(configOf({
        "app.keep": { ...simulatedComponent, module_id: "keep" },
        "app.change": { ...simulatedComponent, stop_timeout_ms: 600 },
        "app.idle": { ...simulatedComponent, stop_timeout_ms: 600 },
        "app.new": { ...simulatedComponent, depends_on: ["app.keep"] }
      }))
      expect(outcome).toEqual({ added: ["app.new"], removed: ["app.drop"], restarted: ["app.change", "app.idle"], unchanged: ["app.keep"] })
      const now = yield* supervisor.list
      expect(now.map((view) => [view.id, view.phase])).toEqual([
        ["app.keep", "ready"],
        ["app.change", "ready"],
        // Stopped by the operator before the reload: it takes the new config and stays stopped.
        ["app.idle", "stopped"],
        ["app.new", "ready"]
      ])
      expect(pidOf(now, "app.keep")).toBe(pidOf(was, "app.keep"))
      expect(pidOf(now, "app.change")).not.toBe(pidOf(was, "app.change"))
      expect(yield* Effect.flip(supervisor.get("app.drop"))).toMatchObject({ _tag: "UnknownComponent", component: "app.drop" })
      expect(yield* control.running).not.toContain(dropPid)
      expect([...(yield* control.running)].sort()).toEqual(now.flatMap((view) => (view.pid === null ? [] : [view.pid])).sort())
      const reasons = (yield* trace).map((event) => `${event.component} ${event.to}: ${event.reason}`)
      expect(reasons).toContain("app.drop stopped: reload: removed from the config (graceful: the process was killed by SIGTERM)")
      expect(reasons).toContain("app.new starting: reload: added to the config")
      // Left alone: nothing happened to it but its start.
      expect((yield* trace).filter((event) => event.component === "app.keep").map((event) => event.to)).toEqual(["starting", "ready"])

      // A changed modules subtree changes what middleware-init sends: that component restarts, alone.
      const again = yield* supervisor.reconcile(configOf({
        "app.keep": { ...simulatedComponent, module_id: "keep" },
        "app.change": { ...simulatedComponent, stop_timeout_ms: 600 },
        "app.idle": { ...simulatedComponent, stop_timeout_ms: 600 },
        "app.new": { ...simulatedComponent, depends_on: ["app.keep"] }
      }, { keep: { threshold: 2 } }))
      expect(again).toEqual({ added: [], removed: [], restarted: ["app.keep"], unchanged: ["app.change", "app.idle", "app.new"] })
      const after = yield* supervisor.list
      expect(pidOf(after, "app.keep")).not.toBe(pidOf(now, "app.keep"))
      expect(pidOf(after, "app.new")).toBe(pidOf(now, "app.new"))
    }).pipe(Effect.provide(quiet)))

  it.scoped("settled waits until the phase stays (or the timeout), where start answers while still starting", () =>
    Effect.gen(function*() {
      const { supervisor, control, behaviour } = yield* simulatedSupervisor(before, { ready: false, healthy: true, contractVersion: "1" })
      const started = yield* supervisor.start("app.keep")
      expect(started.phase).toBe("starting")
      yield* control.nextLaunch
      const early = yield* supervisor.settled("app.keep", 50).pipe(Effect.fork)
      yield* TestClock.adjust("50 millis")
      expect((yield* Fiber.join(early)).phase).toBe("starting")
      const waiting = yield* supervisor.settled("app.keep", 5_000).pipe(Effect.fork)
      yield* Ref.update(behaviour, (b) => ({ ...b, ready: true }))
      yield* TestClock.adjust("100 millis")
      const settled = yield* Fiber.join(waiting)
      expect(settled.phase).toBe("ready")
      expect(settled.pid).not.toBeNull()
      // A start of a running component leaves it alone.
      expect((yield* supervisor.start("app.keep")).pid).toBe(settled.pid)
      expect(yield* control.launches).toHaveLength(1)
      // A stop returns once stopped; settled then answers at once.
      expect((yield* supervisor.stop("app.keep")).phase).toBe("stopped")
      expect((yield* supervisor.settled("app.keep", 5_000)).phase).toBe("stopped")
      // A restart answers mid-way too.
      yield* supervisor.start("app.keep")
      yield* awaitPhase(supervisor, "app.keep", "ready")
      expect((yield* supervisor.restart("app.keep")).phase).toBe("starting")
      expect((yield* supervisor.settled("app.keep", 5_000)).phase).toBe("ready")
    }).pipe(Effect.provide(quiet)))

  it.scoped("start, stop and restart of a component the host does not run, or a disabled one, are impossible transitions", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* simulatedSupervisor(configOf({
        "fn.allow": { kind: "in_process", function: "allow" },
        "app.off": { ...simulatedComponent, enabled: false }
      }))
      const notRun = yield* Effect.flip(supervisor.restart("fn.allow"))
      expect(notRun._tag).toBe("ImpossibleTransition")
      expect(notRun.message).toBe("cannot restart fn.allow: it is of kind in_process, whose process the host does not run")
      const disabled = yield* Effect.flip(supervisor.start("app.off"))
      expect(disabled.message).toBe("cannot start app.off: it is disabled (enabled: false); set enabled: true in the config and reload")
      expect((yield* Effect.flip(supervisor.stop("nope")))._tag).toBe("UnknownComponent")
      expect(yield* control.launches).toEqual([])
    }).pipe(Effect.provide(quiet)))
})
