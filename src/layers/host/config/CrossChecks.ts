/**
 * Checks a decoded config needs beyond its schema: a component's `id` matches its key, its kind has
 * the fields it needs, its `depends_on` names defined components without a cycle, and every hook names
 * defined components. Problems are blamed through provenance.
 */
import { dependencyProblems } from "../../../services/host/DependencyOrder.js"
import type { ComponentConfig, HostConfig } from "../../../services/host/HostConfig.js"
import type { ConfigPath, ConfigProblem, PathIssue } from "./ConfigProblem.js"
import { quoteAll } from "./Expectations.js"
import { blame, type Provenance } from "./Provenance.js"

/** Per kind, the fields a component needs beyond the schema's own requirements. */
const kindRequirements = (component: ComponentConfig): ReadonlyArray<PathIssue> => {
  const kind = JSON.stringify(component.kind)
  const required = (path: ConfigPath, detail = "") => [{ path, reason: `is required for kind ${kind}${detail}` }]
  switch (component.kind) {
    case "http_local_json":
      return [
        ...(component.launch === undefined ? required(["launch"]) : []),
        ...(component.http === undefined
          ? required(["http"], " (with \"port\" or \"endpoint\")")
          : component.http.port === undefined && component.http.endpoint === undefined
          ? [{ path: ["http"], reason: `needs "port" ("auto" or a number) or "endpoint" for kind ${kind}` }]
          : [])
      ]
    case "command_stdio":
      return component.launch === undefined ? required(["launch"]) : []
    case "local_http_json":
      return component.http?.endpoint === undefined ? required(["http", "endpoint"]) : []
    case "in_process":
      return component.function === undefined ? required(["function"]) : []
  }
}

/** Every cross-check problem of `config`, in component, then dependency, then hook order. */
export const crossCheck = (config: HostConfig, provenance: Provenance): ReadonlyArray<ConfigProblem> => {
  const problems: Array<ConfigProblem> = []
  const componentIds = Object.keys(config.components)
  for (const [id, component] of Object.entries(config.components)) {
    const at = ["components", id]
    if (component.id !== undefined && component.id !== id) {
      const path = [...at, "id"]
      problems.push({ file: blame(provenance, path), path, reason: `must equal the component's key ${JSON.stringify(id)}, got ${JSON.stringify(component.id)}` })
    }
    // The kind decides what else is needed, so its fragment is the one to blame for what is missing.
    const kindSource = blame(provenance, [...at, "kind"])
    for (const requirement of kindRequirements(component)) {
      problems.push({ file: kindSource, path: [...at, ...requirement.path], reason: requirement.reason })
    }
  }
  for (const problem of dependencyProblems(config.components)) {
    const path = ["components", problem.component, "depends_on", problem.index]
    const reason = problem._tag === "Unknown"
      ? `"${problem.component}" depends on "${problem.missing}", which is not in components (defined: ${quoteAll(componentIds)})`
      : `depends_on makes a cycle (${problem.cycle.join(" → ")}): no order can start them; remove one of these dependencies`
    problems.push({ file: blame(provenance, path), path, reason })
  }
  for (const [hook, chain] of Object.entries(config.hooks)) {
    const listed = "components" in chain ? chain.components : chain
    const at = "components" in chain ? ["hooks", hook, "components"] : ["hooks", hook]
    listed.forEach((componentId, index) => {
      if (componentIds.includes(componentId)) return
      const path = [...at, index]
      const defined = componentIds.length === 0 ? "none are defined" : `defined: ${quoteAll(componentIds)}`
      problems.push({ file: blame(provenance, path), path, reason: `hook "${hook}" names component "${componentId}", which is not in components (${defined})` })
    })
  }
  return problems
}
