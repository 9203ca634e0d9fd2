import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, FiberRef, FiberRefs, HashSet, Runtime } from "effect"
import { withoutDefaultRefs } from "../../../src/layers/server/LeanRuntime.js"

const custom = FiberRef.unsafeMake("initial")
const untouched = FiberRef.unsafeMake("initial")

describe("withoutDefaultRefs", () => {
  it.effect("keeps every fiber ref set away from its initial value and drops the rest", () =>
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<never>().pipe(
        Effect.locally(custom, "set by the caller"),
        // Present in the runtime's refs, but holding its initial value: the lean runtime leaves it out.
        Effect.locally(untouched, "initial"),
        Effect.annotateLogs("server", "test")
      )
      const lean = withoutDefaultRefs(runtime)
      expect(HashSet.has(FiberRefs.fiberRefs(runtime.fiberRefs), untouched)).toBe(true)
      expect(HashSet.has(FiberRefs.fiberRefs(lean.fiberRefs), untouched)).toBe(false)
      expect(HashSet.size(FiberRefs.fiberRefs(lean.fiberRefs))).toBeLessThan(HashSet.size(FiberRefs.fiberRefs(runtime.fiberRefs)))
      // What a fiber forked from the lean runtime reads is what the full runtime holds.
      const seen = Runtime.runSync(lean)(Effect.all([FiberRef.get(custom), FiberRef.get(FiberRef.currentLogAnnotations), FiberRef.get(untouched)]))
      expect(seen[0]).toBe("set by the caller")
      expect([...seen[1]]).toEqual([["server", "test"]])
      expect(seen[2]).toBe("initial")
      expect(Runtime.runSync(lean)(FiberRef.get(FiberRef.currentMaxOpsBeforeYield))).toBe(
        Runtime.runSync(runtime)(FiberRef.get(FiberRef.currentMaxOpsBeforeYield))
      )
    }))

  it.effect("leaves the context ref out (a fork sets it from the runtime), and its fibers still see the runtime's services", () =>
    Effect.gen(function*() {
      class Greeting extends Context.Tag("test/Greeting")<Greeting, string>() {}
      const runtime = yield* Effect.runtime<Greeting>().pipe(Effect.provideService(Greeting, "hello"))
      expect(HashSet.has(FiberRefs.fiberRefs(runtime.fiberRefs), FiberRef.currentContext)).toBe(true)
      const lean = withoutDefaultRefs(runtime)
      expect(HashSet.has(FiberRefs.fiberRefs(lean.fiberRefs), FiberRef.currentContext)).toBe(false)
      expect(Runtime.runSync(lean)(Greeting)).toBe("hello")
    }))
})
