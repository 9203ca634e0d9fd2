import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, HashMap, Logger, Metric, Schema, TestClock } from "effect"
import { makeRouteAlarms } from "../../../src/layers/server/RouteAlarms.js"
import { AlarmedRoute, routeAlarmActive, routeAlarmsRaisedTotal } from "../../../src/services/server/RouteAlarms.js"

interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** Runs `self` with every log line collected into the returned array instead of printed. */
const withCapturedLogs = <A, E, R>(self: (lines: ReadonlyArray<LogLine>) => Effect.Effect<A, E, R>) => {
  const lines: Array<LogLine> = []
  const collector = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return self(lines).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collector)))
}

const raisedCount = (server: string, route: string) =>
  Metric.value(Metric.tagged(Metric.tagged(routeAlarmsRaisedTotal, "server", server), "route", route)).pipe(
    Effect.map((state) => state.count)
  )

const activeValue = (server: string, route: string) =>
  Metric.value(Metric.tagged(Metric.tagged(routeAlarmActive, "server", server), "route", route)).pipe(
    Effect.map((state) => state.value)
  )

const second = Duration.seconds(1)
const policy = { threshold: 3, windowMs: 10_000, recoverySuccesses: 2 }

describe("RouteAlarms", () => {
  it.effect("raises after threshold failures on one route: one error line, counter, gauge and readiness", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "raise", policy })
        yield* alarms.recordFailure("/boom", "defect", "TypeError: boom")
        yield* TestClock.adjust(second)
        yield* alarms.recordFailure("/boom", "timeout", "handler ran past 5000 ms")
        yield* alarms.recordFailure("/fine", "defect", "once")
        expect(yield* alarms.alarmed).toEqual([])
        expect(yield* raisedCount("raise", "/boom")).toBe(0)

        yield* TestClock.adjust(second)
        yield* alarms.recordFailure("/boom", "defect", "TypeError: boom")
        yield* alarms.recordFailure("/boom", "defect", "TypeError: boom")
        yield* alarms.recordFailure("/boom", "timeout", "handler ran past 5000 ms")

        const errors = lines.filter((line) => line.level === "ERROR")
        expect(errors).toHaveLength(1)
        expect(errors[0]?.message).toContain(`route "/boom" on server "raise" alarmed`)
        expect(errors[0]?.annotations).toEqual({
          server: "raise",
          route: "/boom",
          kind: "defect",
          failures: 3,
          window: "10000ms"
        })
        expect(yield* raisedCount("raise", "/boom")).toBe(1)
        expect(yield* raisedCount("raise", "/fine")).toBe(0)
        expect(yield* activeValue("raise", "/boom")).toBe(1)
        expect(yield* alarms.alarmed).toEqual([
          {
            route: "/boom",
            raised_at: "1970-01-01T00:00:02.000Z",
            failures_in_window: 3,
            last_failure: { kind: "timeout", message: "handler ran past 5000 ms", at: "1970-01-01T00:00:02.000Z" }
          }
        ])
      })
    ))

  it.effect("reports alarmed routes that decode with the AlarmedRoute schema, oldest alarm first", () =>
    Effect.gen(function*() {
      const alarms = yield* makeRouteAlarms({ serverName: "report", policy: { threshold: 1 } })
      yield* alarms.recordFailure("/b", "timeout", "slow")
      yield* TestClock.adjust(second)
      yield* alarms.recordFailure("/a", "defect", "bad")
      const report = yield* alarms.alarmed
      expect(Schema.decodeUnknownSync(Schema.Array(AlarmedRoute))(report)).toEqual(report)
      expect(report.map((entry) => entry.route)).toEqual(["/b", "/a"])
    }))

  it.effect("clears after recoverySuccesses successes in a row: info line, gauge 0, ready again", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "clear", policy })
        for (let i = 0; i < 3; i++) yield* alarms.recordFailure("/flaky", "defect", "boom")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["/flaky"])

        yield* alarms.recordSuccess("/flaky")
        yield* alarms.recordFailure("/flaky", "timeout", "slow again")
        yield* alarms.recordSuccess("/flaky")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["/flaky"])

        yield* alarms.recordSuccess("/flaky")
        expect(yield* alarms.alarmed).toEqual([])
        expect(yield* activeValue("clear", "/flaky")).toBe(0)
        const infos = lines.filter((line) => line.level === "INFO")
        expect(infos).toHaveLength(1)
        expect(infos[0]?.message).toContain(`route "/flaky" on server "clear" recovered`)
        expect(infos[0]?.annotations).toEqual({ server: "clear", route: "/flaky" })

        for (let i = 0; i < 3; i++) yield* alarms.recordFailure("/flaky", "defect", "boom")
        expect(yield* raisedCount("clear", "/flaky")).toBe(2)
        expect(yield* activeValue("clear", "/flaky")).toBe(1)
      })
    ))

  it.effect("stays alarmed without traffic until quietMs passed without a failure, then clears: info line, gauge 0", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "quiet", policy: { ...policy, quietMs: 60_000 } })
        for (let i = 0; i < 3; i++) yield* alarms.recordFailure("/stuck", "timeout", "slow")
        yield* TestClock.adjust(Duration.seconds(59))
        const report = yield* alarms.alarmed
        expect(report.map((entry) => [entry.route, entry.failures_in_window])).toEqual([["/stuck", 0]])
        expect(lines.filter((line) => line.level === "INFO")).toEqual([])

        yield* TestClock.adjust(second)
        expect(yield* alarms.alarmed).toEqual([])
        expect(yield* activeValue("quiet", "/stuck")).toBe(0)
        const infos = lines.filter((line) => line.level === "INFO")
        expect(infos.map((line) => line.message)).toEqual([
          `route "/stuck" on server "quiet" recovered: no failure for 60000 ms, alarm cleared`
        ])
        // Forgotten: one more failure does not raise it again.
        yield* alarms.recordFailure("/stuck", "timeout", "slow")
        expect(yield* alarms.alarmed).toEqual([])
      })
    ))

  it.effect("slides the window: failures older than windowMs no longer count", () =>
    Effect.gen(function*() {
      const alarms = yield* makeRouteAlarms({ serverName: "slide", policy })
      yield* alarms.recordFailure("/slow", "timeout", "slow")
      yield* TestClock.adjust(Duration.seconds(6))
      yield* alarms.recordFailure("/slow", "timeout", "slow")
      yield* TestClock.adjust(Duration.seconds(4))
      // t = 10 s: the failure at 0 s is exactly windowMs old, outside (0 s, 10 s].
      yield* alarms.recordFailure("/slow", "timeout", "slow")
      expect(yield* alarms.alarmed).toEqual([])

      yield* TestClock.adjust(Duration.seconds(5))
      // t = 15 s: 6 s, 10 s and 15 s are inside (5 s, 15 s].
      yield* alarms.recordFailure("/slow", "timeout", "slow")
      expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["/slow"])
      expect(yield* raisedCount("slide", "/slow")).toBe(1)
    }))

  it.effect("ignores successes on routes without state", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "hot", policy })
        for (let i = 0; i < 1_000; i++) yield* alarms.recordSuccess(`/route-${i % 7}`)
        yield* alarms.recordFailure("/x", "defect", "boom")
        yield* alarms.recordSuccess("/x")
        expect(yield* alarms.alarmed).toEqual([])
        expect(lines).toEqual([])
      })
    ))

  describe("maxRoutes", () => {
    it.effect("folds new failing routes into \"(other)\" when every tracked route failed recently", () =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "fold", policy, maxRoutes: 2 })
        yield* alarms.recordFailure("/a", "defect", "boom")
        yield* alarms.recordFailure("/b", "defect", "boom")
        yield* alarms.recordFailure("/c", "defect", "c broke")
        yield* alarms.recordFailure("/d", "defect", "d broke")
        yield* alarms.recordFailure("/e", "timeout", "e slow")

        const report = yield* alarms.alarmed
        expect(report).toEqual([
          {
            route: "(other)",
            raised_at: "1970-01-01T00:00:00.000Z",
            failures_in_window: 3,
            last_failure: { kind: "timeout", message: "e slow", at: "1970-01-01T00:00:00.000Z" }
          }
        ])
        expect(yield* raisedCount("fold", "(other)")).toBe(1)
        expect(yield* raisedCount("fold", "/c")).toBe(0)
      }))

    it.effect("clears \"(other)\" with successes of routes it does not track by name", () =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "fold-clear", policy, maxRoutes: 1 })
        yield* alarms.recordFailure("/a", "defect", "boom")
        for (let i = 0; i < 3; i++) yield* alarms.recordFailure(`/folded-${i}`, "defect", "boom")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["(other)"])

        yield* alarms.recordSuccess("/a")
        yield* alarms.recordSuccess("/a")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["(other)"])

        yield* alarms.recordSuccess("/folded-0")
        yield* alarms.recordSuccess("/folded-2")
        expect(yield* alarms.alarmed).toEqual([])
        expect(yield* activeValue("fold-clear", "(other)")).toBe(0)
      }))

    it.effect("evicts a route whose failures left the window before folding a new one", () =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "evict", policy, maxRoutes: 2 })
        yield* alarms.recordFailure("/old", "defect", "boom")
        yield* TestClock.adjust(Duration.seconds(5))
        yield* alarms.recordFailure("/recent", "defect", "boom")
        yield* TestClock.adjust(Duration.seconds(6))
        // t = 11 s: /old is idle, /recent still has a failure inside the window.
        for (let i = 0; i < 3; i++) yield* alarms.recordFailure("/new", "timeout", "slow")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["/new"])
        expect(yield* raisedCount("evict", "/new")).toBe(1)

        // /new is alarmed and /recent failed inside the window: neither may be evicted.
        for (let i = 0; i < 3; i++) yield* alarms.recordFailure("/newer", "defect", "boom")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["/new", "(other)"])
      }))

    it.effect("never evicts an alarmed route, though its failures left the window", () =>
      Effect.gen(function*() {
        const alarms = yield* makeRouteAlarms({ serverName: "keep", policy, maxRoutes: 1 })
        for (let i = 0; i < 3; i++) yield* alarms.recordFailure("/down", "defect", "boom")
        yield* TestClock.adjust(Duration.seconds(30))
        yield* alarms.recordFailure("/other-route", "defect", "boom")
        expect((yield* alarms.alarmed).map((entry) => entry.route)).toEqual(["/down"])
      }))
  })

  it.effect("dies naming every invalid option", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        makeRouteAlarms({ serverName: "bad", policy: { threshold: 0, windowMs: 0 }, maxRoutes: 0 })
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        expect(Cause.pretty(exit.cause)).toContain(
          `RouteAlarms for server "bad": policy.threshold: expected a positive integer, got 0; ` +
            `policy.windowMs: expected a positive number of milliseconds, got 0; ` +
            `maxRoutes: expected a positive integer, got 0`
        )
      }
    }))
})
