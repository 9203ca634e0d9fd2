/**
 * Issue 10, "hook calls failed by a module restart under load: 0" (real host, `npm run build` first):
 * while a client runs 2,000 hook invocations at concurrency 8, the bundled Dator is SIGKILLed again and
 * again and restarted by the supervisor. Every invocation is answered: `allow`, or — while Dator is not
 * routable (`starting`, or its run ended during the call) — the documented `NotReady` step failure; none
 * fails `Unreachable` (a connection refused or reset by the restart).
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, type HostProcess, killPid, makeDataDir, removeDataDirs, startHost } from "../../support/hostProcess.js"

afterAll(removeDataDirs)

const invocations = 2_000
const concurrency = 8
const maxKills = 12

interface Step {
  readonly outcome: string
  readonly error?: { readonly reason: string; readonly message: string }
}

interface View {
  readonly phase: string
  readonly pid: number | null
}

const viewOf = async (host: HostProcess): Promise<View> => {
  const { body } = await control(host, "GET", "/v1/components/middleware.dator")
  const view = body as { readonly component?: View } & Partial<View>
  return view.component ?? { phase: view.phase ?? "unknown", pid: view.pid ?? null }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("a supervised module restarted under load", () => {
  it.scopedLive("answers every hook invocation (allow, or NotReady while it restarts) and fails none as Unreachable", () =>
    Effect.gen(function*() {
      const host = yield* startHost(makeDataDir({
        "50-load.json": {
          hooks: { load: ["middleware.dator"] },
          modules: { dator: { quota: null } },
          components: {
            "middleware.dator": {
              restart_policy: { mode: "on_failure", max_restarts: 1_000, window_sec: 60, backoff_initial_ms: 10, backoff_max_ms: 50 }
            }
          }
        }
      }))
      let done = 0
      let kills = 0
      const killer = (async () => {
        while (done < invocations && kills < maxKills) {
          const view = await viewOf(host)
          if (view.phase !== "ready" || view.pid === null) {
            await sleep(10)
            continue
          }
          await sleep(80 + Math.random() * 120) // under load for a while, then killed mid-stream
          if (done >= invocations) break
          killPid(view.pid)
          kills++
          while ((await viewOf(host)).pid === view.pid) await sleep(5)
        }
      })()
      const steps = yield* Effect.forEach(
        Array.from({ length: invocations }, (_, n) => n),
        (n) =>
          Effect.promise(async () => {
            const answer = await control(host, "POST", "/v1/hooks/load/invoke", { id: `load-${n}`, hook: "load", subject: "user:1", payload: { n } })
            done++
            expect(answer.status).toBe(200)
            const step = (answer.body as { readonly steps: ReadonlyArray<Step> }).steps[0]
            return step ?? { outcome: "missing" }
          }),
        { concurrency }
      )
      yield* Effect.promise(() => killer)
      const byOutcome = new Map<string, number>()
      for (const step of steps) {
        const key = step.outcome === "failed" ? `failed:${step.error?.reason ?? "?"}` : step.outcome
        byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1)
      }
      const unexpected = steps.filter((step) => step.outcome !== "allow" && step.error?.reason !== "NotReady")
      console.log(`RestartUnderLoad: ${kills} kills, outcomes ${JSON.stringify(Object.fromEntries(byOutcome))}`)
      expect(kills).toBeGreaterThanOrEqual(3)
      expect(unexpected.slice(0, 5)).toEqual([])
      expect(byOutcome.get("allow") ?? 0).toBeGreaterThan(invocations / 10) // the module served between the kills
    }), 120_000)
})
