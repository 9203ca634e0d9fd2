/**
 * What a reload changes, pure: which component ids were added, removed, changed or left alone. A
 * component changed when its decoded config differs structurally, or the `modules` subtree it receives
 * in `middleware-init` does (a new module config needs a new init, so a restart).
 */
import { Equal, Utils } from "effect"
import type { HostConfig } from "../../../services/host/HostConfig.js"

/** Component ids by what a reload does with them, each list in config order. */
export interface ReconcilePlan {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
}

/** Deep equality of plain decoded values (objects, arrays, primitives). */
const sameValue = (a: unknown, b: unknown): boolean => Utils.structuralRegion(() => Equal.equals(a, b))

/** The module config `id` receives from `config`. */
const moduleConfigOf = (config: HostConfig, id: string): unknown => {
  const component = config.components[id]
  return component === undefined ? undefined : config.modules[component.module_id ?? id]
}

/** Compares the components of `before` and `after`. */
export const planReconcile = (before: HostConfig, after: HostConfig): ReconcilePlan => {
  const added: Array<string> = []
  const changed: Array<string> = []
  const unchanged: Array<string> = []
  for (const [id, component] of Object.entries(after.components)) {
    const previous = before.components[id]
    if (previous === undefined) added.push(id)
    else if (sameValue(previous, component) && sameValue(moduleConfigOf(before, id), moduleConfigOf(after, id))) unchanged.push(id)
    else changed.push(id)
  }
  const removed = Object.keys(before.components).filter((id) => !(id in after.components))
  return { added, removed, changed, unchanged }
}
