import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Schema, TestClock } from "effect"
import { makeInProcessExecutor } from "../../../src/layers/host/executors/InProcessExecutor.js"
import { runHook } from "../../../src/layers/host/HookRunner.js"
import { type HookSpec, hookSpec, HookResult } from "../../../src/services/host/HookRunner.js"
import { InvocationRecord } from "../../../src/services/host/Traces.js"
import type { Executor } from "../../../src/services/host/Executor.js"
import type { WorkflowEnvelope } from "../../../src/services/host/MiddlewareContract.js"

const envelope: WorkflowEnvelope = { id: "env-7", hook: "ingress", subject: "user:42", payload: { text: "hello" } }

/** An in-process step that records the envelopes it saw and answers with `answer`. */
const step = (id: string, answer: (envelope: WorkflowEnvelope) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<WorkflowEnvelope>>([])
    const executor = yield* makeInProcessExecutor(id, (env) => Effect.zipRight(Ref.update(seen, (all) => [...all, env]), answer(env)), {
      timeoutMs: 60_000,
      maxConcurrency: 4
    })
    return { executor, seen: Ref.get(seen) }
  })

const lookup = (...executors: ReadonlyArray<Executor>) => (id: string) => executors.find((executor) => executor.component === id)

const hook = (components: ReadonlyArray<string>, failurePolicy: HookSpec["failurePolicy"] = "fail_closed"): HookSpec => ({
  name: "ingress",
  components,
  failurePolicy
})

const noTrace = () => Effect.void

describe("runHook", () => {
  it.effect("passes a modified payload down the chain: allow → modify → allow ends as modify with merged annotations", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.succeed({ decision: "allow", annotations: { "a.score": 1, shared: "a" } }))
      const b = yield* step("b", (env) =>
        Effect.succeed({ decision: "modify", payload: { text: "redacted", was: env.payload }, annotations: { shared: "b" } }))
      const c = yield* step("c", () => Effect.succeed({ decision: "allow", annotations: { "c.ok": true } }))
      const result = yield* runHook(hook(["a", "b", "c"]), envelope, lookup(a.executor, b.executor, c.executor), noTrace)
      expect(result.decision).toEqual({
        decision: "modify",
        payload: { text: "redacted", was: { text: "hello" } },
        annotations: { "a.score": 1, shared: "b", "c.ok": true }
      })
      expect(result.steps.map((s) => [s.component, s.outcome])).toEqual([["a", "allow"], ["b", "modify"], ["c", "allow"]])
      expect((yield* a.seen)[0]).toBe(envelope)
      expect((yield* b.seen)[0]?.payload).toEqual({ text: "hello" })
      expect((yield* c.seen)[0]).toEqual({ ...envelope, payload: { text: "redacted", was: { text: "hello" } } })
    }))

  it.effect("answers a bare allow when every step allows without annotations", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.succeed({ decision: "allow", reason: "fine" }))
      const result = yield* runHook(hook(["a"]), envelope, lookup(a.executor), noTrace)
      expect(result.decision).toEqual({ decision: "allow" })
    }))

  it.effect("stops at a deny: later steps do not run and show as skipped", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.succeed({ decision: "allow", annotations: { "a.seen": true } }))
      const b = yield* step("b", () => Effect.succeed({ decision: "deny", reason: "secret detected", annotations: { "b.rule": "r1" } }))
      const c = yield* step("c", () => Effect.succeed({ decision: "allow" }))
      const result = yield* runHook(hook(["a", "b", "c"]), envelope, lookup(a.executor, b.executor, c.executor), noTrace)
      expect(result.decision).toEqual({ decision: "deny", reason: "secret detected", annotations: { "a.seen": true, "b.rule": "r1" } })
      expect(result.steps).toEqual([
        { component: "a", outcome: "allow", duration_ms: 0 },
        { component: "b", outcome: "deny", duration_ms: 0 },
        { component: "c", outcome: "skipped", duration_ms: 0 }
      ])
      expect(yield* c.seen).toHaveLength(0)
    }))

  it.effect("fail_closed: a failed step denies with the component, reason and message, and stops the chain", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.succeed({ decision: "allow" }))
      const b = yield* step("b", () => Effect.fail(new Error("model not loaded")))
      const c = yield* step("c", () => Effect.succeed({ decision: "allow" }))
      const result = yield* runHook(hook(["a", "b", "c"], "fail_closed"), envelope, lookup(a.executor, b.executor, c.executor), noTrace)
      expect(result.decision).toEqual({
        decision: "deny",
        reason: "b failed: Failed: component b: the function failed: model not loaded"
      })
      expect(result.steps[1]).toEqual({
        component: "b",
        outcome: "failed",
        duration_ms: 0,
        error: { reason: "Failed", message: "component b: the function failed: model not loaded" }
      })
      expect(result.steps[2]?.outcome).toBe("skipped")
      expect(yield* c.seen).toHaveLength(0)
    }))

  it.effect("fail_open: a failed step is recorded and the chain goes on", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.succeed({ decision: "modify", payload: "v2" }))
      const b = yield* step("b", () => Effect.succeed({ decision: "maybe" }))
      const c = yield* step("c", () => Effect.succeed({ decision: "allow" }))
      const result = yield* runHook(hook(["a", "b", "c"], "fail_open"), envelope, lookup(a.executor, b.executor, c.executor), noTrace)
      expect(result.decision).toEqual({ decision: "modify", payload: "v2" })
      expect(result.steps.map((s) => s.outcome)).toEqual(["modify", "failed", "allow"])
      expect(result.steps[1]?.error?.reason).toBe("InvalidDecision")
      expect((yield* c.seen)[0]?.payload).toBe("v2")
    }))

  it.effect("treats a component without an executor as a failed step (NoExecutor)", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.succeed({ decision: "allow" }))
      const closed = yield* runHook(hook(["ghost", "a"]), envelope, lookup(a.executor), noTrace)
      expect(closed.decision).toEqual({
        decision: "deny",
        reason: "ghost failed: NoExecutor: no executor for component ghost (is it configured and enabled?)"
      })
      const open = yield* runHook(hook(["ghost", "a"], "fail_open"), envelope, lookup(a.executor), noTrace)
      expect(open.decision).toEqual({ decision: "allow" })
      expect(open.steps.map((s) => s.outcome)).toEqual(["failed", "allow"])
    }))

  it.effect("turns an executor defect into a failed step instead of failing the hook", () =>
    Effect.gen(function*() {
      const broken: Executor = { component: "broken", invoke: () => Effect.die(new Error("bug in executor")) }
      const result = yield* runHook(hook(["broken"]), envelope, lookup(broken), noTrace)
      expect(result.decision.decision).toBe("deny")
      expect(result.steps[0]?.error).toEqual({ reason: "Failed", message: "component broken: executor defect: Error: bug in executor" })
    }))

  it.effect("deadline_ms interrupts the running step (Timeout) and starts no step after it (fail_closed)", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const a = yield* step("a", () => Effect.as(Effect.sleep("400 millis"), { decision: "allow" }))
      const b = yield* step("b", () => Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true))))
      const c = yield* step("c", () => Effect.succeed({ decision: "allow" }))
      const fiber = yield* Effect.fork(
        runHook(hook(["a", "b", "c"]), { ...envelope, deadline_ms: 1_000 }, lookup(a.executor, b.executor, c.executor), noTrace)
      )
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const result = yield* Fiber.join(fiber)
      expect(yield* Ref.get(interrupted)).toBe(true)
      expect(result.decision).toEqual({
        decision: "deny",
        reason: "b failed: Timeout: component b: interrupted: the hook's deadline_ms 1000 passed"
      })
      expect(result.steps).toEqual([
        { component: "a", outcome: "allow", duration_ms: 400 },
        {
          component: "b",
          outcome: "failed",
          duration_ms: 600,
          error: { reason: "Timeout", message: "component b: interrupted: the hook's deadline_ms 1000 passed" }
        },
        { component: "c", outcome: "skipped", duration_ms: 0 }
      ])
      expect(yield* c.seen).toHaveLength(0)
    }))

  it.effect("deadline_ms under fail_open: steps past the deadline are failed without being started", () =>
    Effect.gen(function*() {
      const a = yield* step("a", () => Effect.as(Effect.sleep("5 seconds"), { decision: "allow" }))
      const b = yield* step("b", () => Effect.succeed({ decision: "deny", reason: "never asked" }))
      const fiber = yield* Effect.fork(
        runHook(hook(["a", "b"], "fail_open"), { ...envelope, deadline_ms: 1_000 }, lookup(a.executor, b.executor), noTrace)
      )
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      expect(result.decision).toEqual({ decision: "allow" })
      expect(result.steps.map((s) => [s.outcome, s.error?.reason])).toEqual([["failed", "Timeout"], ["failed", "Timeout"]])
      expect(result.steps[1]?.error?.message).toBe("not started: the hook's deadline_ms 1000 had passed")
      expect(yield* b.seen).toHaveLength(0)
    }))

  it.effect("hands trace exactly one snake_case InvocationRecord per run", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-01-02T03:04:05.000Z"))
      const records = yield* Ref.make<ReadonlyArray<InvocationRecord>>([])
      const a = yield* step("a", () => Effect.as(Effect.sleep("25 millis"), { decision: "allow" }))
      const b = yield* step("b", () => Effect.succeed({ decision: "deny", reason: "no" }))
      const fiber = yield* Effect.fork(
        runHook(hook(["a", "b"]), envelope, lookup(a.executor, b.executor), (record) => Ref.update(records, (all) => [...all, record]))
      )
      yield* TestClock.adjust("25 millis")
      const result = yield* Fiber.join(fiber)
      const traced = yield* Ref.get(records)
      const lines = JSON.parse(JSON.stringify(Schema.encodeSync(Schema.Array(InvocationRecord))(traced))) as unknown
      expect(lines).toEqual([{
        at: "2026-01-02T03:04:05.000Z",
        hook: "ingress",
        envelope_id: "env-7",
        subject: "user:42",
        decision: { decision: "deny", reason: "no" },
        failure_policy: "fail_closed",
        steps: [
          { component: "a", outcome: "allow", duration_ms: 25 },
          { component: "b", outcome: "deny", duration_ms: 0 }
        ],
        duration_ms: 25
      }])
      expect(Schema.decodeUnknownSync(Schema.Array(InvocationRecord))(lines)).toEqual(traced)
      expect(Object.keys(Schema.encodeSync(HookResult)(result))).toEqual(["decision", "steps"])
    }))
})

describe("hookSpec", () => {
  it("reads a bare list as fail_closed and keeps an explicit policy", () => {
    expect(hookSpec("ingress", ["a", "b"])).toEqual({ name: "ingress", components: ["a", "b"], failurePolicy: "fail_closed" })
    expect(hookSpec("egress", { components: ["c"], failure_policy: "fail_open" })).toEqual({
      name: "egress",
      components: ["c"],
      failurePolicy: "fail_open"
    })
  })
})
