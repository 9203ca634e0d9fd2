import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { ExecutorComponent } from "../../../../src/layers/host/executors/ExecutorLimits.js"
import { makeLocalHttpExecutor, makeSupervisedHttpExecutor } from "../../../../src/layers/host/executors/HttpExecutors.js"
import { makeModuleClient } from "../../../../src/layers/host/ModuleClient.js"
import { ComponentConfig } from "../../../../src/services/host/HostConfig.js"
import type { WorkflowEnvelope } from "../../../../src/services/host/MiddlewareContract.js"
import { startHeaderModule } from "../../../support/headerModule.js"

const envelope: WorkflowEnvelope = { id: "env-1", hook: "ingress", subject: "user:42", payload: {} }

const component = (id: string, config: unknown): ExecutorComponent => ({ ...Schema.decodeUnknownSync(ComponentConfig)(config), id })

const deadlineOf = (headers: Record<string, unknown>): number => Number(headers["x-corral-deadline-ms"])

describe("executors: what a module call carries", () => {
  it.scopedLive("a supervised call sends the current run's token and its absolute deadline", () =>
    Effect.gen(function*() {
      const module = yield* startHeaderModule("tcp")
      const executor = yield* makeSupervisedHttpExecutor(
        component("middleware.dator", { kind: "http_local_json", http: { port: "auto", request_timeout_ms: 2_000 } }),
        yield* makeModuleClient(),
        Effect.succeed({ phase: "ready", endpoint: module.endpoint, token: "run-token-1" })
      )
      const before = Date.now()
      yield* executor.invoke(envelope)
      yield* executor.invoke({ ...envelope, deadline_ms: 300 })
      const [first, second] = module.requests
      expect(first?.headers.authorization).toBe("Bearer run-token-1")
      expect(deadlineOf(first?.headers ?? {})).toBeGreaterThanOrEqual(before + 2_000)
      expect(deadlineOf(first?.headers ?? {})).toBeLessThanOrEqual((first?.at ?? 0) + 2_000)
      // The envelope's own deadline_ms is sooner than the call's timeout: it wins.
      expect(deadlineOf(second?.headers ?? {})).toBeLessThanOrEqual((second?.at ?? 0) + 300)
      expect(deadlineOf(second?.headers ?? {})).toBeGreaterThanOrEqual(before + 300)
    }))

  it.scopedLive("a service the host did not start gets the deadline but no credential", () =>
    Effect.gen(function*() {
      const module = yield* startHeaderModule("tcp")
      const executor = yield* makeLocalHttpExecutor(
        component("middleware.local", { kind: "local_http_json", http: { endpoint: module.endpoint } }),
        yield* makeModuleClient()
      )
      yield* executor.invoke(envelope)
      expect(module.requests[0]?.headers.authorization).toBeUndefined()
      expect(deadlineOf(module.requests[0]?.headers ?? {})).toBeGreaterThan(Date.now())
    }))
})
