/**
 * `depends_on` at run time (simulated processes, TestClock): a component starts after its dependencies
 * are ready and stops before them, as the lifecycle trace shows; one whose dependency failed is not
 * started and says which.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Logger } from "effect"
import { LaunchError } from "../../../../src/services/host/ProcessLauncher.js"
import { awaitPhase, configOf, simulatedComponent, simulatedSupervisor } from "../../../support/simulatedSupervisor.js"

const quiet = Logger.replace(Logger.defaultLogger, Logger.make(() => {}))

// Listed dependents first, so config order alone would start them in the wrong order.
const layered = configOf({
  "app.web": { ...simulatedComponent, depends_on: ["app.cache", "app.db"] },
  "app.cache": { ...simulatedComponent, depends_on: ["app.db"] },
  "app.db": simulatedComponent
})

describe("depends_on (simulated processes, TestClock)", () => {
  it.scoped("starts each component after its dependencies are ready and stops it before them, as the trace shows", () =>
    Effect.gen(function*() {
      const { supervisor, trace, close } = yield* simulatedSupervisor(layered)
      yield* supervisor.startAll
      const views = yield* supervisor.list
      expect(views.map((view) => [view.id, view.phase, view.depends_on])).toEqual([
        ["app.web", "ready", ["app.cache", "app.db"]],
        ["app.cache", "ready", ["app.db"]],
        ["app.db", "ready", []]
      ])
      expect(views.every((view) => view.started_at !== null && !Number.isNaN(Date.parse(view.started_at)))).toBe(true)
      expect((yield* trace).map((event) => `${event.component} ${event.to}`)).toEqual([
        "app.db starting",
        "app.db ready",
        "app.cache starting",
        "app.cache ready",
        "app.web starting",
        "app.web ready"
      ])
      yield* close
      expect((yield* trace).slice(6).map((event) => `${event.component} ${event.to}`)).toEqual([
        "app.web stopping",
        "app.web stopped",
        "app.cache stopping",
        "app.cache stopped",
        "app.db stopping",
        "app.db stopped"
      ])
    }).pipe(Effect.provide(quiet)))

  it.scoped("a component whose dependency failed is not started, and its last_error names the dependency", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* simulatedSupervisor(layered)
      yield* control.scriptLaunch((spec) =>
        spec.name === "app.db"
          ? Effect.fail(new LaunchError({ name: spec.name, reason: "Spawn", message: `cannot start "${spec.name}": no such file` }))
          : Effect.void)
      const starting = yield* Effect.fork(supervisor.startAll)
      yield* awaitPhase(supervisor, "app.web", "failed")
      yield* Fiber.join(starting)
      expect((yield* supervisor.get("app.db")).last_error).toBe(`cannot start "app.db": no such file`)
      expect((yield* supervisor.get("app.cache")).last_error).toBe(`not started: its dependency "app.db" (failed) is not ready; start it first`)
      expect((yield* supervisor.get("app.web")).last_error).toBe(
        `not started: its dependencies "app.cache" (failed) and "app.db" (failed) are not ready; start them first`
      )
      expect(yield* control.launches).toEqual([])
    }).pipe(Effect.provide(quiet)))
})
