import { Clock, Effect, Metric, Ref } from "effect"
import {
  defaultRouteAlarmPolicy,
  Failure,
  failuresInWindow,
  initialRouteAlarmState,
  isQuiet,
  routeAlarmPolicyProblems,
  step,
  Success,
  Tick,
  type RouteAlarmPolicy,
  type RouteAlarmState,
  type RouteAlarmTransition,
  type RouteFailureKind
} from "../../services/policies/RouteAlarm.js"
import {
  otherRoute,
  routeAlarmActive,
  routeAlarmsRaisedTotal,
  type AlarmedRoute,
  type RouteAlarms
} from "../../services/server/RouteAlarms.js"

/** How to build the route alarms of one server. */
export interface RouteAlarmsOptions {
  /** Names the server in logs and in the `server` metric tag. */
  readonly serverName: string
  /** Overrides of `defaultRouteAlarmPolicy`. */
  readonly policy?: Partial<RouteAlarmPolicy>
  /** Routes tracked by name (default 256); beyond it, idle routes are evicted, then new ones fold into "(other)". */
  readonly maxRoutes?: number
}

/** The route alarms of one server, with a synchronous check for the event-loop callers of the direct path. */
export interface ServerRouteAlarms extends RouteAlarms {
  /**
   * Whether a success of `route` may change anything now (the route, or "(other)", is alarmed): when not,
   * a caller outside any fiber can skip `recordSuccess`.
   */
  readonly successMatters: (route: string) => boolean
}

/** Default cap on routes tracked by name, which also bounds the cardinality of the `route` tag. */
export const defaultMaxRoutes = 256

type RouteStates = ReadonlyMap<string, RouteAlarmState>

interface StepOutcome {
  readonly route: string
  readonly state: RouteAlarmState
  readonly transition: RouteAlarmTransition
}

/**
 * Builds the route alarms of one server over a `Ref` of per-route states driven by the pure
 * `RouteAlarm` policy; dies with a message naming the field when the options are invalid.
 *
 * Only failures create a route's entry. When `maxRoutes` named routes are tracked, a new failing route
 * evicts the idle route (not alarmed, no failure in the window) that failed longest ago; with none idle
 * it is folded into "(other)". Successes of routes without an entry count towards clearing "(other)".
 */
export const makeRouteAlarms = (options: RouteAlarmsOptions): Effect.Effect<ServerRouteAlarms> =>
  Effect.suspend(() => {
    const { serverName } = options
    const policy: RouteAlarmPolicy = { ...defaultRouteAlarmPolicy, ...options.policy }
    const maxRoutes = options.maxRoutes ?? defaultMaxRoutes
    const problems = routeAlarmPolicyProblems(policy).map((problem) => `policy.${problem}`)
    if (!Number.isInteger(maxRoutes) || maxRoutes < 1) {
      problems.push(`maxRoutes: expected a positive integer, got ${maxRoutes}`)
    }
    if (problems.length > 0) {
      return Effect.dieMessage(`RouteAlarms for server "${serverName}": ${problems.join("; ")}`)
    }
    return Effect.map(Ref.make<RouteStates>(new Map()), (states) => build(serverName, policy, maxRoutes, states))
  })

const build = (
  serverName: string,
  policy: RouteAlarmPolicy,
  maxRoutes: number,
  states: Ref.Ref<RouteStates>
): ServerRouteAlarms => {
  // The states as of the last change, for `successMatters`: every `Ref.modify` below sets it with its result.
  let latest: RouteStates = new Map()

  const raisedTotal = Metric.tagged(routeAlarmsRaisedTotal, "server", serverName)
  const active = Metric.tagged(routeAlarmActive, "server", serverName)

  const onRaised = (outcome: StepOutcome, kind: RouteFailureKind, message: string): Effect.Effect<void> => {
    const failures = outcome.state.recentFailures.length
    return Effect.logError(
      `route "${outcome.route}" on server "${serverName}" alarmed: ${failures} defects or timeouts within ` +
        `${policy.windowMs} ms, the last a ${kind}: ${message}. The server reports not ready until the route ` +
        `completes ${policy.recoverySuccesses} requests in a row or has no failure for ${policy.quietMs} ms; ` +
        `look for the cause in its handler.`
    ).pipe(
      Effect.annotateLogs({ server: serverName, route: outcome.route, kind, failures, window: `${policy.windowMs}ms` }),
      Effect.zipRight(Metric.increment(Metric.tagged(raisedTotal, "route", outcome.route))),
      Effect.zipRight(Metric.set(Metric.tagged(active, "route", outcome.route), 1))
    )
  }

  const recovered = `${policy.recoverySuccesses} requests in a row completed`
  const quiet = `no failure for ${policy.quietMs} ms`

  const onCleared = (route: string, how: string): Effect.Effect<void> =>
    Effect.logInfo(`route "${route}" on server "${serverName}" recovered: ${how}, alarm cleared`).pipe(
      Effect.annotateLogs({ server: serverName, route }),
      Effect.zipRight(Metric.set(Metric.tagged(active, "route", route), 0))
    )

  const recordFailure = (route: string, kind: RouteFailureKind, message: string): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(
        Ref.modify(states, (routes): readonly [StepOutcome, RouteStates] => {
          const { key, kept } = admit(routes, route, now)
          const next = step(policy, kept.get(key) ?? initialRouteAlarmState, Failure(kind, now, message))
          const updated = new Map(kept).set(key, next.state)
          latest = updated
          return [{ route: key, state: next.state, transition: next.transition }, updated]
        }),
        (outcome) =>
          outcome.transition === "raised"
            ? onRaised(outcome, kind, message)
            : outcome.transition === "cleared"
            ? onCleared(outcome.route, quiet)
            : Effect.void
      ))

  // Picks the entry a failure of `route` lands in, evicting an idle route when the cap is reached.
  const admit = (routes: RouteStates, route: string, now: number): { key: string; kept: RouteStates } => {
    if (routes.has(route)) return { key: route, kept: routes }
    const named = routes.size - (routes.has(otherRoute) ? 1 : 0)
    if (named < maxRoutes) return { key: route, kept: routes }
    let idle: string | undefined
    let idleSince = Infinity
    for (const [name, state] of routes) {
      if (name === otherRoute || state.alarmed || failuresInWindow(policy, state, now) > 0) continue
      const lastAt = state.lastFailure?.at ?? -Infinity
      if (lastAt < idleSince) {
        idle = name
        idleSince = lastAt
      }
    }
    if (idle === undefined) return { key: otherRoute, kept: routes }
    const kept = new Map(routes)
    kept.delete(idle)
    return { key: route, kept }
  }

  // The entry a success of `route` may change: only an alarmed one, so the usual answer is none.
  const alarmedEntryFor = (routes: RouteStates, route: string): string | undefined => {
    const state = routes.get(route)
    if (state !== undefined) return state.alarmed ? route : undefined
    return routes.get(otherRoute)?.alarmed === true ? otherRoute : undefined
  }

  const recordSuccess = (route: string): Effect.Effect<void> =>
    Effect.flatMap(Ref.get(states), (routes) => {
      const key = alarmedEntryFor(routes, route)
      if (key === undefined) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          Ref.modify(states, (current): readonly [{ transition: RouteAlarmTransition; wasQuiet: boolean }, RouteStates] => {
            const state = current.get(key)
            if (state === undefined) return [{ transition: "none", wasQuiet: false }, current]
            const next = step(policy, state, Success(now))
            const outcome = { transition: next.transition, wasQuiet: isQuiet(policy, state, now) }
            if (next.state === state) return [outcome, current]
            latest = new Map(current).set(key, next.state)
            return [outcome, latest]
          }),
          ({ transition, wasQuiet }) => (transition === "cleared" ? onCleared(key, wasQuiet ? quiet : recovered) : Effect.void)
        ))
    })

  // Clears every alarm that has been quiet long enough; returns the routes after it and those it cleared.
  const settleQuiet = (now: number) =>
    Ref.modify(states, (routes): readonly [{ routes: RouteStates; cleared: ReadonlyArray<string> }, RouteStates] => {
      let next: Map<string, RouteAlarmState> | undefined
      const cleared: Array<string> = []
      for (const [route, state] of routes) {
        if (!isQuiet(policy, state, now)) continue
        next ??= new Map(routes)
        next.set(route, step(policy, state, Tick(now)).state)
        cleared.push(route)
      }
      const after = next ?? routes
      latest = after
      return [{ routes: after, cleared }, after]
    })

  const alarmed: Effect.Effect<ReadonlyArray<AlarmedRoute>> = Effect.flatMap(
    Clock.currentTimeMillis,
    (now) =>
      Effect.flatMap(settleQuiet(now), ({ routes, cleared }) =>
        Effect.as(Effect.forEach(cleared, (route) => onCleared(route, quiet), { discard: true }), routes)).pipe(Effect.map((routes) => {
        const report: Array<{ readonly raisedAt: number; readonly route: AlarmedRoute }> = []
        for (const [route, state] of routes) {
          if (!state.alarmed || state.raisedAt === null) continue
          const last = state.lastFailure
          report.push({
            raisedAt: state.raisedAt,
            route: {
              route,
              raised_at: new Date(state.raisedAt).toISOString(),
              failures_in_window: failuresInWindow(policy, state, now),
              last_failure: last === null
                ? null
                : { kind: last.kind, message: last.message, at: new Date(last.at).toISOString() }
            }
          })
        }
        return report.sort((a, b) => a.raisedAt - b.raisedAt).map((entry) => entry.route)
      }))
  )

  const successMatters = (route: string): boolean => alarmedEntryFor(latest, route) !== undefined

  return { serverName, recordFailure, recordSuccess, alarmed, successMatters }
}
