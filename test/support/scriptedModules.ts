/**
 * A scripted module transport for simulation tests: a `ModuleClient` that answers readiness, health,
 * `middleware-init` and invocations from a `Ref` the test changes, with no process and no socket.
 */
import { Effect, Layer, Ref } from "effect"
import { ModuleClient, type ModuleReply } from "../../src/services/host/ModuleClient.js"

/** What every scripted module answers right now. */
export interface ModuleBehaviour {
  readonly ready: boolean
  readonly healthy: boolean
  readonly contractVersion: string
}

/** A module report that names `version` as its middleware contract version. */
export const scriptedReport = (version: string) => ({
  name: "sim",
  description: "simulated module",
  capabilities: ["sim"],
  middleware_contract_version: version,
  host_api_version: "1",
  output_contracts: []
})

/**
 * The client: `GET /readyz` is 200 while `ready`, any other GET 200 while `healthy`; a POST to an
 * init path answers the report, any other POST (an invocation) answers `allow`.
 */
export const scriptedModuleClient = (behaviour: Ref.Ref<ModuleBehaviour>): Layer.Layer<ModuleClient> =>
  Layer.succeed(ModuleClient, {
    get: (_endpoint, path) =>
      Effect.map(Ref.get(behaviour), (b): ModuleReply => ({
        status: path === "/readyz" ? (b.ready ? 200 : 503) : b.healthy ? 200 : 500,
        body: null
      })),
    postJson: (_endpoint, path) =>
      Effect.map(Ref.get(behaviour), (b): ModuleReply => ({
        status: 200,
        body: path.endsWith("/init") ? scriptedReport(b.contractVersion) : { decision: "allow", annotations: { by: "sim" } }
      }))
  })
