/**
 * An operator stop always ends as a stop (simulated processes, TestClock): one whose caller goes away
 * mid-stop still publishes `stopped` (and the component can be started again), and one of a component
 * still waiting in a start wave for its `depends_on` is not undone by the wave.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Logger, TestClock } from "effect"
import { awaitPhase, configOf, simulatedComponent, simulatedSupervisor } from "../../../support/simulatedSupervisor.js"

const quiet = Logger.replace(Logger.defaultLogger, Logger.make(() => {}))

describe("an operator stop keeps its word (simulated processes, TestClock)", () => {
  it.scoped("a stop whose caller is interrupted mid-grace still ends in stopped, and a start then works", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* simulatedSupervisor(configOf({ "sim.one": simulatedComponent }))
      yield* supervisor.startAll
      const { pid } = yield* awaitPhase(supervisor, "sim.one", "ready")
      if (pid === null) return yield* Effect.dieMessage("sim.one is ready without a pid")
      // It ignores TERM, so the stop waits its whole 500 ms grace, during which its caller goes away
      // (an HTTP client that disconnects, a reload cut off by the host's stop).
      yield* control.ignoreTerm(pid)
      const stopping = yield* Effect.fork(supervisor.stop("sim.one"))
      yield* awaitPhase(supervisor, "sim.one", "stopping")
      yield* Fiber.interruptFork(stopping)
      yield* TestClock.adjust("1 second")
      const stopped = yield* awaitPhase(supervisor, "sim.one", "stopped")
      expect(stopped.pid).toBeNull()
      expect(yield* control.exitOf(pid)).toEqual({ code: null, signal: "SIGKILL" })
      yield* supervisor.start("sim.one")
      const again = yield* awaitPhase(supervisor, "sim.one", "ready")
      expect(again.pid).not.toBe(pid)
    }).pipe(Effect.provide(quiet)))

  it.scoped("a stop of a component waiting for its dependency during host start leaves it stopped, and the start wave does not start it", () =>
    Effect.gen(function*() {
      const { supervisor, control, trace } = yield* simulatedSupervisor(configOf({
        "app.web": { ...simulatedComponent, depends_on: ["app.db"] },
        "app.db": simulatedComponent
      }))
      // The dependency's spawn takes 800 ms of TestClock time: app.web waits in the start wave meanwhile.
      yield* control.scriptProcess((spec) => (spec.name === "app.db" ? { startDelayMs: 800 } : {}))
      const starting = yield* Effect.fork(supervisor.startAll)
      yield* awaitPhase(supervisor, "app.db", "starting")
      expect((yield* supervisor.get("app.web")).phase).toBe("configured")
      const view = yield* supervisor.stop("app.web")
      expect(view.phase).toBe("stopped")
      yield* TestClock.adjust("1 second")
      yield* awaitPhase(supervisor, "app.db", "ready")
      yield* Fiber.join(starting)
      expect((yield* supervisor.get("app.web")).phase).toBe("stopped")
      expect((yield* control.launches).map((launch) => launch.spec.name)).toEqual(["app.db"])
      expect((yield* trace).filter((event) => event.component === "app.web").map((event) => `${event.from} → ${event.to}`)).toEqual([
        "configured → stopped"
      ])
      // The operator's start is what starts it.
      yield* supervisor.start("app.web")
      yield* awaitPhase(supervisor, "app.web", "ready")
    }).pipe(Effect.provide(quiet)))
})
