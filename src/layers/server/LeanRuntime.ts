/**
 * A runtime without the fiber refs that hold their initial value. Every fiber forked from a runtime
 * copies each of its fiber refs, so request fibers forked from the lean one are cheaper; a ref left
 * out reads as its initial value, which is what it held, so nothing an app observes changes.
 * The context ref is left out too: a fork sets it from the runtime's context anyway, and when the
 * runtime's refs hold one, the fork compares the two contexts with `Equal` (hashing every service of
 * a context built for each request).
 */
import { FiberId, FiberRef, FiberRefs, HashSet, Option, Runtime } from "effect"

/** `runtime` without the fiber refs whose value is (identically) their initial one, nor the context ref. */
export const withoutDefaultRefs = <R>(runtime: Runtime.Runtime<R>): Runtime.Runtime<R> => {
  const none = FiberRefs.empty()
  let fiberRefs = FiberRefs.empty()
  for (const fiberRef of HashSet.values(FiberRefs.fiberRefs(runtime.fiberRefs))) {
    if (fiberRef === FiberRef.currentContext) continue
    const value = FiberRefs.get(runtime.fiberRefs, fiberRef)
    if (Option.isSome(value) && value.value !== FiberRefs.getOrDefault(none, fiberRef)) {
      fiberRefs = FiberRefs.updateAs(fiberRefs, { fiberId: FiberId.none, fiberRef, value: value.value })
    }
  }
  return Runtime.make({ context: runtime.context, fiberRefs, runtimeFlags: runtime.runtimeFlags })
}
