import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Schema, Supervisor } from "effect"
import type { ExecutorComponent } from "../../../src/layers/host/executors/ExecutorLimits.js"
import { makeSupervisedHttpExecutor } from "../../../src/layers/host/executors/HttpExecutors.js"
import { runHook } from "../../../src/layers/host/HookRunner.js"
import { makeModuleClient } from "../../../src/layers/host/ModuleClient.js"
import type { ComponentRoute } from "../../../src/services/host/Component.js"
import type { Executor } from "../../../src/services/host/Executor.js"
import type { HookSpec } from "../../../src/services/host/HookRunner.js"
import { ComponentConfig } from "../../../src/services/host/HostConfig.js"
import type { WorkflowEnvelope } from "../../../src/services/host/MiddlewareContract.js"
import type { InvocationRecord } from "../../../src/services/host/Traces.js"
import { answerJson, startFakeModule } from "../../support/fakeModule.js"

const envelope: WorkflowEnvelope = { id: "env-1", hook: "ingress", subject: "user:42", payload: { text: "hello" } }

const supervised = (id: string, http: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): ExecutorComponent => ({
  ...Schema.decodeUnknownSync(ComponentConfig)({ kind: "http_local_json", http: { port: "auto", ...http }, ...extra }),
  id
})

const hook = (components: ReadonlyArray<string>, failurePolicy: HookSpec["failurePolicy"] = "fail_closed"): HookSpec => ({
  name: "ingress",
  components,
  failurePolicy
})

const lookup = (...executors: ReadonlyArray<Executor>) => (id: string) => executors.find((executor) => executor.component === id)

/** Counts every fiber started under it. */
class FiberCounter extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart() {
    this.started++
  }
}

/** A module that allows at once on `/invoke` and never answers on `/slow`. */
const startModule = startFakeModule((request, response) => {
  if (request.url === "/invoke") answerJson(response, { decision: "allow", annotations: { seen: true } })
})

describe("runHook over HTTP steps (the real module client)", () => {
  it.scopedLive("runs a two-step chain with deadline_ms in the caller's fiber: no fiber, no timeout fork per step", () =>
    Effect.gen(function*() {
      const module = yield* startModule
      const client = yield* makeModuleClient()
      const route = Effect.succeed<ComponentRoute>({ phase: "ready", endpoint: module.endpoint, token: "launch-token" })
      const a = yield* makeSupervisedHttpExecutor(supervised("a", { invoke_path: "/invoke" }), client, route)
      const b = yield* makeSupervisedHttpExecutor(supervised("b", { invoke_path: "/invoke" }), client, route)
      const counter = new FiberCounter()
      const traced: Array<InvocationRecord> = []
      const trace = (record: InvocationRecord) => Effect.sync(() => void traced.push(record))
      for (let i = 0; i < 20; i++) {
        const result = yield* runHook(hook(["a", "b"]), { ...envelope, deadline_ms: 5_000 }, lookup(a, b), trace).pipe(
          Effect.supervised(counter)
        )
        expect(result.decision).toEqual({ decision: "allow", annotations: { seen: true } })
        expect(result.steps.map((step) => step.outcome)).toEqual(["allow", "allow"])
      }
      // Before: Effect.timeoutFail forked two fibers per step for the hook's deadline.
      expect(counter.started).toBe(0)
      expect(module.requests).toHaveLength(40)
      expect(traced).toHaveLength(20)
    }))

  it.scopedLive("ends a step at the hook's deadline_ms: the hook's Timeout, the module's socket closed, the permit back, no onTimeout", () =>
    Effect.gen(function*() {
      const module = yield* startModule
      const client = yield* makeModuleClient()
      const timeouts = yield* Ref.make(0)
      const route = Ref.make<ComponentRoute>({ phase: "ready", endpoint: module.endpoint, token: null })
      const slow = yield* makeSupervisedHttpExecutor(
        supervised("slow", { invoke_path: "/slow", request_timeout_ms: 10_000 }, { max_concurrency: 1 }),
        client,
        Ref.get(yield* route),
        Ref.update(timeouts, (n) => n + 1)
      )
      const started = Date.now()
      const result = yield* runHook(hook(["slow"]), { ...envelope, deadline_ms: 150 }, lookup(slow), () => Effect.void)
      expect(Date.now() - started).toBeGreaterThanOrEqual(140)
      expect(result.decision).toEqual({
        decision: "deny",
        reason: "slow failed: Timeout: component slow: interrupted: the hook's deadline_ms 150 passed"
      })
      expect(yield* module.waitClosed(1)).toBe(true)
      expect(yield* Ref.get(timeouts)).toBe(0)
      // max_concurrency 1: the permit came back, so the next call is not Busy.
      const again = yield* Effect.flip(slow.invokeWithin?.(envelope, 50) ?? Effect.die("no invokeWithin"))
      expect(again._tag).toBe("HookDeadlinePassed")
    }))

  it.scopedLive("a request_timeout_ms sooner than the deadline is the component's Timeout, reported once to onTimeout", () =>
    Effect.gen(function*() {
      const module = yield* startModule
      const timeouts = yield* Ref.make(0)
      const slow = yield* makeSupervisedHttpExecutor(
        supervised("slow", { invoke_path: "/slow", request_timeout_ms: 100 }),
        yield* makeModuleClient(),
        Effect.succeed({ phase: "ready", endpoint: module.endpoint, token: null }),
        Ref.update(timeouts, (n) => n + 1)
      )
      const result = yield* runHook(hook(["slow"], "fail_open"), { ...envelope, deadline_ms: 5_000 }, lookup(slow), () => Effect.void)
      expect(result.steps[0]?.error).toEqual({
        reason: "Timeout",
        message: `component slow: POST ${module.endpoint}/slow: no complete answer within 100 ms`
      })
      expect(yield* Ref.get(timeouts)).toBe(1)
    }))

  it.scopedLive("interrupting a running hook destroys the module's socket and returns the step's permit", () =>
    Effect.gen(function*() {
      const module = yield* startModule
      const route = yield* Ref.make<ComponentRoute>({ phase: "ready", endpoint: module.endpoint, token: null })
      const slow = yield* makeSupervisedHttpExecutor(
        supervised("slow", { invoke_path: "/slow", request_timeout_ms: 10_000 }, { max_concurrency: 1 }),
        yield* makeModuleClient(),
        Ref.get(route)
      )
      const fiber = yield* Effect.fork(runHook(hook(["slow"]), envelope, lookup(slow), () => Effect.void))
      yield* Effect.sleep("50 millis")
      // The one permit is held: another call is Busy, and still Busy (checked first) once the component is not routable.
      expect((yield* Effect.flip(slow.invoke(envelope))).reason).toBe("Busy")
      yield* Ref.set(route, { phase: "stopping", endpoint: module.endpoint, token: null })
      expect((yield* Effect.flip(slow.invoke(envelope))).reason).toBe("Busy")
      yield* Fiber.interrupt(fiber)
      expect(yield* module.waitClosed(1)).toBe(true)
      // The permit is back: NotReady now, and once ready again a call runs (to the hook's deadline here).
      expect(yield* Effect.flip(slow.invoke(envelope))).toMatchObject({ reason: "NotReady", phase: "stopping" })
      yield* Ref.set(route, { phase: "ready", endpoint: module.endpoint, token: null })
      expect((yield* Effect.flip(slow.invokeWithin?.(envelope, 30) ?? Effect.die("no invokeWithin")))._tag).toBe("HookDeadlinePassed")
    }))
})
