/**
 * Restart semantics users expect (simulated processes, TestClock): `always` restarts a clean exit,
 * `on_failure` does not; a crash during start-up is retried within the budget while a readiness
 * timeout is `failed` at once; `restart_after_unhealthy` restarts a component whose checks keep failing;
 * every health check is published.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Ref, TestClock } from "effect"
import { awaitPhase, awaitView, configOf, simulatedComponent, simulatedSupervisor } from "../../../support/simulatedSupervisor.js"

const quiet = Logger.replace(Logger.defaultLogger, Logger.make(() => {}))

const withPolicy = (policy: Record<string, unknown>) =>
  configOf({ "sim.one": { ...simulatedComponent, restart_policy: { ...simulatedComponent.restart_policy, ...policy } } })

describe("restart semantics (simulated processes, TestClock)", () => {
  it.scoped("mode always restarts after a clean exit 0; on_failure leaves it stopped and says why", () =>
    Effect.gen(function*() {
      const always = yield* simulatedSupervisor(withPolicy({ mode: "always" }))
      yield* always.supervisor.start("sim.one")
      const first = yield* always.control.nextLaunch
      yield* awaitPhase(always.supervisor, "sim.one", "ready")
      yield* always.control.crash(first.pid, 0)
      const waiting = yield* awaitPhase(always.supervisor, "sim.one", "starting")
      expect(waiting.restarts).toEqual({ used: 1, left: 1 })
      yield* TestClock.adjust("1 second")
      const second = yield* always.control.nextLaunch
      expect(second.pid).not.toBe(first.pid)
      yield* awaitPhase(always.supervisor, "sim.one", "ready")
      yield* always.close

      const onFailure = yield* simulatedSupervisor(withPolicy({ mode: "on_failure" }))
      yield* onFailure.supervisor.start("sim.one")
      const only = yield* onFailure.control.nextLaunch
      yield* awaitPhase(onFailure.supervisor, "sim.one", "ready")
      yield* onFailure.control.crash(only.pid, 0)
      const stopped = yield* awaitPhase(onFailure.supervisor, "sim.one", "stopped")
      expect(stopped.last_error).toBe("process exited with code 0; restart_policy.mode on_failure does not restart a clean exit (\"always\" does)")
      expect(stopped.pid).toBeNull()
      expect(stopped.started_at).toBeNull()
      yield* TestClock.adjust("1 hour")
      expect(yield* onFailure.control.launches).toHaveLength(1)
      // An operator start runs it again.
      yield* onFailure.supervisor.start("sim.one")
      yield* onFailure.control.nextLaunch
      yield* awaitPhase(onFailure.supervisor, "sim.one", "ready")
    }).pipe(Effect.provide(quiet)))

  it.scoped("on_failure retries a crash during start-up within the budget, its stderr ending last_error, then fails", () =>
    Effect.gen(function*() {
      const { supervisor, control, trace } = yield* simulatedSupervisor(withPolicy({}), { ready: false, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      for (let attempt = 1; attempt <= 3; attempt++) {
        const launch = yield* control.nextLaunch
        yield* control.emit(launch.pid, `starting attempt ${attempt}`)
        yield* control.emit(launch.pid, "Traceback (most recent call last):", "stderr")
        yield* control.emit(launch.pid, `RuntimeError: boom ${attempt} ${"x".repeat(300)}`, "stderr")
        yield* control.crash(launch.pid, 1)
        if (attempt < 3) {
          const waiting = yield* awaitView(supervisor, "sim.one", (view) => view.next_attempt_at !== null)
          expect(waiting.phase).toBe("starting")
          expect(waiting.last_error).toBe(
            `the process exited with code 1 before it was ready; last stderr lines:\nTraceback (most recent call last):\n` +
              `RuntimeError: boom ${attempt} ${"x".repeat(300)}`.slice(0, 200)
          )
          yield* TestClock.adjust("1 second")
        }
      }
      const failed = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(failed.last_error).toBe(
        "the process exited with code 1 before it was ready; restart budget spent: 2 restarts within 60 s (max 2); " +
          `last stderr lines:\nTraceback (most recent call last):\n${`RuntimeError: boom 3 ${"x".repeat(300)}`.slice(0, 200)}`
      )
      // The last process's output stays visible after it exited, stderr included.
      expect(failed.recent_log).toEqual(["starting attempt 3", "Traceback (most recent call last):", `RuntimeError: boom 3 ${"x".repeat(300)}`])
      expect((yield* trace).map((event) => event.to)).toEqual(["starting", "starting", "starting", "failed"])
    }).pipe(Effect.provide(quiet)))

  it.scoped("a readiness timeout under on_failure is failed at once, never retried", () =>
    Effect.gen(function*() {
      const { supervisor, control } = yield* simulatedSupervisor(withPolicy({ max_restarts: 5 }), { ready: false, healthy: true, contractVersion: "1" })
      yield* supervisor.start("sim.one")
      yield* control.nextLaunch
      yield* TestClock.adjust("1001 millis")
      const failed = yield* awaitPhase(supervisor, "sim.one", "failed")
      expect(failed.last_error).toBe("not ready within startup_timeout_ms (1000 ms)")
      yield* TestClock.adjust("1 hour")
      expect(yield* control.launches).toHaveLength(1)
      expect(yield* control.running).toEqual([])
    }).pipe(Effect.provide(quiet)))

  it.scoped("restart_after_unhealthy restarts a component after that many failed checks in a row, counted against the budget", () =>
    Effect.gen(function*() {
      const { supervisor, control, behaviour, trace, healthResults } = yield* simulatedSupervisor(withPolicy({ restart_after_unhealthy: 3 }))
      yield* supervisor.start("sim.one")
      const first = yield* control.nextLaunch
      // The first check runs as it becomes ready; the next ones fail.
      yield* awaitView(supervisor, "sim.one", (view) => view.last_health?.ok === true)
      yield* Ref.update(behaviour, (b) => ({ ...b, healthy: false }))
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      yield* awaitPhase(supervisor, "sim.one", "degraded")
      expect(yield* control.running).toEqual([first.pid])
      yield* TestClock.adjust("1 second")
      const restarting = yield* awaitView(supervisor, "sim.one", (view) => view.phase === "starting" && view.next_attempt_at !== null)
      expect(restarting.restarts).toEqual({ used: 1, left: 1 })
      expect(yield* control.running).toEqual([])
      yield* Ref.update(behaviour, (b) => ({ ...b, healthy: true }))
      yield* TestClock.adjust("1 second")
      const second = yield* control.nextLaunch
      yield* awaitPhase(supervisor, "sim.one", "ready")
      expect(yield* control.running).toEqual([second.pid])
      const reasons = (yield* trace).map((event) => `${event.to}: ${event.reason}`)
      expect(reasons).toContainEqual(expect.stringMatching(
        /^starting: 3 failed health checks in a row \(restart_after_unhealthy 3\): the host stopped the process; restart 1 of 2 in \d+ ms$/
      ))
      // Every check was published, the failing ones with what failed.
      const published = (yield* healthResults).map((result) => [result.component, result.ok, result.detail])
      expect(published.slice(0, 4)).toEqual([
        ["sim.one", true, "200"],
        ["sim.one", false, "health path answered 500"],
        ["sim.one", false, "health path answered 500"],
        ["sim.one", false, "health path answered 500"]
      ])
    }).pipe(Effect.provide(quiet)))
})
