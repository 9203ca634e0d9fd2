/**
 * ModuleClientSimulated: the module transport of a simulation. A call reaches the simulated process
 * that listens at its endpoint (found by the port or socket in its launch environment) and is answered
 * as that process's `ModulePlan` says: correctly, with garbage, with too much, slowly, with an error
 * status, or not at all; a process that exits mid-call resets it, and no process means a refused
 * connect. The call's own limits are enforced as the live client does (its timeout on the Clock, its
 * response cap), and POSTs need the run's token, as the SDK demands.
 */
import { Clock, Effect, Layer, Option, Ref } from "effect"
import {
  type CallHeaders,
  type CallLimits,
  ModuleCallError,
  ModuleClient,
  type ModuleClientShape,
  type ModuleReply,
  unixEndpointPrefix
} from "../../services/host/ModuleClient.js"
import { defaultHttpConfig } from "../../services/host/HostConfig.js"
import { hostApiVersion, middlewareContractVersion } from "../../services/host/MiddlewareContract.js"
import type { SimulatedLaunch, SimulatedProcesses } from "./launcher/ProcessLauncherSimulated.js"

/** How a simulated module answers one kind of call. */
export type SimulatedAnswer =
  | { readonly _tag: "Correct" }
  /** 200 with a body the contract does not accept. */
  | { readonly _tag: "Garbage" }
  /** A body larger than the call's `maxResponseBytes`. */
  | { readonly _tag: "TooMuch" }
  /** The correct answer, after `delayMs` on the Clock. */
  | { readonly _tag: "Slow"; readonly delayMs: number }
  /** No answer at all: the call's timeout ends it. */
  | { readonly _tag: "Silent" }
  | { readonly _tag: "Status"; readonly status: number }

/** How one simulated module process behaves on the wire. */
export interface ModulePlan {
  /** Its ready path answers 200 this long after the process started; null: never. */
  readonly readyAfterMs: number | null
  readonly init: SimulatedAnswer
  readonly invoke: SimulatedAnswer
  readonly health: SimulatedAnswer
  /** What a correct invocation answer decides. */
  readonly decision: "allow" | "deny" | "modify"
}

/** A module that is ready at once and answers everything correctly, allowing. */
export const wellBehavedModule: ModulePlan = {
  readyAfterMs: 0,
  init: { _tag: "Correct" },
  invoke: { _tag: "Correct" },
  health: { _tag: "Correct" },
  decision: "allow"
}

/** The kind of a call, by its method and path. */
export type ModuleCallKind = "ready" | "health" | "init" | "invoke"

/** One call that reached a simulated process. */
export interface ModuleCallRecord {
  readonly at: number
  readonly pid: number
  /** The launch's name: the component id. */
  readonly component: string
  readonly kind: ModuleCallKind
  readonly endpoint: string
}

/** What the transport needs of the simulated processes. */
export type ProcessTable = Pick<SimulatedProcesses, "table" | "launchOf" | "exitOf">

/** The test's control over the simulated modules. */
export interface SimulatedModules {
  /** Decides the plan of each process when it is first called (default: `wellBehavedModule`). */
  readonly scriptModules: (script: (launch: SimulatedLaunch) => ModulePlan) => Effect.Effect<void>
  /** Changes the plan of process `pid` from now on. */
  readonly change: (pid: number, patch: Partial<ModulePlan>) => Effect.Effect<void>
  /** Runs `listener` on every call as it arrives, before it is answered (in the caller's fiber). */
  readonly onCall: (listener: (call: ModuleCallRecord) => Effect.Effect<void>) => Effect.Effect<void>
  /** Whether a connect to `endpoint` is accepted now: a live process listens there and is past its `readyAfterMs`. */
  readonly accepts: (endpoint: string) => Effect.Effect<boolean>
}

/** The paths the transport tells apart (the defaults of `http`); any other GET is a health check, any other POST an invocation. */
export interface ModulePaths {
  readonly ready: string
  readonly init: string
}

const defaultPaths: ModulePaths = { ready: defaultHttpConfig.ready_path, init: defaultHttpConfig.init_path }

/** The launch variables that name where a process listens, as the supervisor and the broker set them. */
const listensAt = (launch: SimulatedLaunch, endpoint: string): boolean => {
  const env = launch.spec.env
  if (endpoint.startsWith(unixEndpointPrefix)) {
    const path = endpoint.slice(unixEndpointPrefix.length)
    return env["CORRAL_MODULE_SOCKET"] === path || env["CORRAL_BACKEND_ENDPOINT"] === path
  }
  const port = /:(\d+)\/?$/.exec(endpoint)?.[1]
  return port !== undefined && (env["CORRAL_MODULE_PORT"] === port || env["CORRAL_BACKEND_ENDPOINT"] === `127.0.0.1:${port}`)
}

const report = {
  name: "sim",
  description: "simulated module",
  capabilities: ["sim"],
  middleware_contract_version: middlewareContractVersion,
  host_api_version: hostApiVersion,
  output_contracts: []
}

/** Builds a transport over `processes`: its layer provides `ModuleClient`, its control scripts the modules. */
export const makeSimulatedModuleClient = (
  processes: ProcessTable,
  paths: ModulePaths = defaultPaths
): Effect.Effect<{ readonly layer: Layer.Layer<ModuleClient>; readonly control: SimulatedModules }> =>
  Effect.gen(function*() {
    const script = yield* Ref.make<(launch: SimulatedLaunch) => ModulePlan>(() => wellBehavedModule)
    const plans = yield* Ref.make<ReadonlyMap<number, ModulePlan>>(new Map())
    const listeners = yield* Ref.make<ReadonlyArray<(call: ModuleCallRecord) => Effect.Effect<void>>>([])

    const planOf = (launch: SimulatedLaunch): Effect.Effect<ModulePlan> =>
      Effect.flatMap(Ref.get(plans), (map) => {
        const known = map.get(launch.pid)
        if (known !== undefined) return Effect.succeed(known)
        return Effect.flatMap(Ref.get(script), (decide) => {
          const plan = decide(launch)
          return Effect.as(Ref.update(plans, (all) => new Map(all).set(launch.pid, plan)), plan)
        })
      })

    /** The newest live launched process listening at `endpoint`, and when it started. */
    const listener = (endpoint: string) =>
      Effect.gen(function*() {
        const table = yield* processes.table
        for (const entry of [...table].reverse()) {
          if (!entry.alive || entry.parent !== null) continue
          const launch = yield* processes.launchOf(entry.pid)
          if (Option.isSome(launch) && listensAt(launch.value, endpoint)) return Option.some({ launch: launch.value, startedAt: entry.startedAt })
        }
        return Option.none()
      })

    const isReady = (plan: ModulePlan, startedAt: number) =>
      Effect.map(Clock.currentTimeMillis, (now) => plan.readyAfterMs !== null && now - startedAt >= plan.readyAfterMs)

    const failure = (endpoint: string, path: string, reason: ModuleCallError["reason"], message: string, status?: number) =>
      new ModuleCallError({ endpoint, path, reason, message, ...(status === undefined ? {} : { status }) })

    /** What `answer` makes of a call whose correct reply is `correct`; `post` makes a non-2xx status a failure. */
    const reply = (
      endpoint: string,
      path: string,
      answer: SimulatedAnswer,
      correct: ModuleReply,
      garbage: unknown,
      post: boolean
    ): Effect.Effect<ModuleReply, ModuleCallError> => {
      switch (answer._tag) {
        case "Correct":
          return Effect.succeed(correct)
        case "Garbage":
          return Effect.succeed({ status: 200, body: garbage })
        case "TooMuch":
          return Effect.fail(failure(endpoint, path, "TooLarge", `${endpoint}${path}: the answer is larger than the call's limit (simulated)`))
        case "Slow":
          return Effect.as(Effect.sleep(answer.delayMs), correct)
        case "Silent":
          return Effect.never
        case "Status":
          return post && (answer.status < 200 || answer.status > 299)
            ? Effect.fail(failure(endpoint, path, "Status", `${endpoint}${path} answered ${answer.status} (simulated)`, answer.status))
            : Effect.succeed({ status: answer.status, body: null })
      }
    }

    const call = (
      endpoint: string,
      path: string,
      method: "GET" | "POST",
      limits: CallLimits,
      headers: CallHeaders | undefined
    ): Effect.Effect<ModuleReply, ModuleCallError> =>
      Effect.gen(function*() {
        const found = yield* listener(endpoint)
        if (Option.isNone(found)) return yield* failure(endpoint, path, "Unreachable", `connect ECONNREFUSED ${endpoint} (no simulated process listens there)`)
        const { launch, startedAt } = found.value
        const kind: ModuleCallKind = method === "GET" ? (path === paths.ready ? "ready" : "health") : path === paths.init ? "init" : "invoke"
        const at = yield* Clock.currentTimeMillis
        const record: ModuleCallRecord = { at, pid: launch.pid, component: launch.spec.name, kind, endpoint }
        yield* Effect.forEach(yield* Ref.get(listeners), (listen) => listen(record), { discard: true })
        const plan = yield* planOf(launch)
        const token = launch.spec.env["CORRAL_MODULE_TOKEN"]
        if (method === "POST" && token !== undefined && headers?.["authorization"] !== `Bearer ${token}`) {
          return yield* failure(endpoint, path, "Status", `${endpoint}${path} answered 401: not this run's token (simulated)`, 401)
        }
        const answered: Effect.Effect<ModuleReply, ModuleCallError> = kind === "ready"
          ? Effect.map(isReady(plan, startedAt), (ready) => ({ status: ready ? 200 : 503, body: null }))
          : kind === "health"
          ? reply(endpoint, path, plan.health, { status: 200, body: { ok: true } }, "garbage", false)
          : kind === "init"
          ? reply(endpoint, path, plan.init, { status: 200, body: report }, { not: "a module report" }, true)
          : reply(endpoint, path, plan.invoke, { status: 200, body: decisionOf(plan.decision, launch.spec.name) }, { decision: "maybe" }, true)
        const answer = kind === "health" ? plan.health : kind === "init" ? plan.init : kind === "invoke" ? plan.invoke : undefined
        // Answered at once: nothing can happen meanwhile (and no fibers are forked for the race and the timer).
        if (answer?._tag !== "Slow" && answer?._tag !== "Silent") return yield* answered
        const reset = Effect.flatMap(processes.exitOf(launch.pid), () =>
          Effect.fail(failure(endpoint, path, "Unreachable", `${endpoint}${path}: connection reset: the process exited (simulated)`)))
        return yield* Effect.raceFirst(answered, reset).pipe(
          Effect.timeoutFail({
            duration: limits.timeoutMs,
            onTimeout: () => failure(endpoint, path, "Timeout", `${endpoint}${path}: no answer within ${limits.timeoutMs} ms (simulated)`)
          })
        )
      })

    const shape: ModuleClientShape = {
      get: (endpoint, path, limits, headers) => call(endpoint, path, "GET", limits, headers),
      postJson: (endpoint, path, _body, limits, headers) => call(endpoint, path, "POST", limits, headers)
    }
    const control: SimulatedModules = {
      scriptModules: (decide) => Ref.set(script, decide),
      change: (pid, patch) =>
        Effect.flatMap(processes.launchOf(pid), Option.match({
          onNone: () => Effect.void,
          onSome: (launch) => Effect.flatMap(planOf(launch), (plan) => Ref.update(plans, (all) => new Map(all).set(pid, { ...plan, ...patch })))
        })),
      onCall: (listen) => Ref.update(listeners, (all) => [...all, listen]),
      accepts: (endpoint) =>
        Effect.flatMap(listener(endpoint), Option.match({
          onNone: () => Effect.succeed(false),
          onSome: ({ launch, startedAt }) => Effect.flatMap(planOf(launch), (plan) => isReady(plan, startedAt))
        }))
    }
    return { layer: Layer.succeed(ModuleClient, shape), control }
  })

/** A correct invocation answer deciding `decision`, annotated with the component that made it. */
const decisionOf = (decision: ModulePlan["decision"], component: string) =>
  decision === "modify"
    ? { decision, payload: { modified_by: component }, annotations: { by: component } }
    : decision === "deny"
    ? { decision, reason: `${component} denies (simulated)`, annotations: { by: component } }
    : { decision, annotations: { by: component } }
