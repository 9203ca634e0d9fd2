/**
 * SIGHUP reloads a running `corral up` (the built host, real modules): operator fragments are edited in
 * the data dir's `config/`, the host gets SIGHUP, and the control API shows one component added, one
 * removed (its process gone) and the bundled ones untouched (same pids); a hook invoke runs the new
 * chain. A second SIGHUP with two broken fragments changes nothing and prints both problems.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { control, type HostProcess, makeDataDir, removeDataDirs, startHost } from "../../support/hostProcess.js"
import { isAlive } from "../../support/procfs.js"
import { waitUntil } from "../../support/rawHttp.js"

afterAll(removeDataDirs)

const datorScript = Path.resolve(import.meta.dirname, "../../../modules/dator/dator.py")

/** A second Dator under another id, unsandboxed so it starts fast. */
const extraDator = {
  kind: "http_local_json",
  module_id: "dator",
  launch: { executable: "python3", args: [datorScript] },
  http: { port: "auto", startup_timeout_ms: 10_000 }
}

interface ComponentsBody {
  readonly components: ReadonlyArray<{ readonly id: string; readonly phase: string; readonly pid: number | null }>
}

const components = (host: HostProcess) =>
  Effect.promise(() => control(host, "GET", "/v1/components")).pipe(Effect.map((reply) => (reply.body as ComponentsBody).components))

/** Sends SIGHUP to the host we started (by its pid) and waits (≤ 20 s) for `marker` to show in its stderr after the signal. */
const hangUp = (host: HostProcess, marker: string) =>
  Effect.promise(async () => {
    const seen = host.stderr().length
    const pid = host.child.pid
    if (pid === undefined) throw new Error("the host has no pid")
    process.kill(pid, "SIGHUP")
    await waitUntil(() => host.stderr().slice(seen).includes(marker), 20_000)
    return host.stderr().slice(seen)
  })

describe("corral up reloads its config on SIGHUP", () => {
  it.scopedLive("adds one component, removes one, leaves the bundled ones with the same pid; a broken config changes nothing", () =>
    Effect.gen(function*() {
      const dataDir = makeDataDir({ "50-one.json": { components: { "extra.one": extraDator }, hooks: { extra: ["extra.one"] } } })
      const fragment = (name: string) => Path.join(dataDir, "config", name)
      const host = yield* startHost(dataDir)
      const before = yield* components(host)
      expect(before.map((c) => [c.id, c.phase]).sort()).toEqual([["extra.one", "ready"], ["middleware.arca", "ready"], ["middleware.dator", "ready"]])
      const pidOf = (list: typeof before, id: string) => list.find((c) => c.id === id)?.pid ?? null
      const onePid = pidOf(before, "extra.one")

      Fs.rmSync(fragment("50-one.json"))
      Fs.writeFileSync(fragment("60-two.json"), JSON.stringify({ components: { "extra.two": extraDator }, hooks: { extra: ["extra.two"] } }))
      const said = yield* hangUp(host, "corral: reloaded")
      expect(said).toContain("added extra.two; removed extra.one; restarted none; unchanged middleware.arca, middleware.dator")

      const after = yield* components(host)
      expect(after.map((c) => [c.id, c.phase]).sort()).toEqual([["extra.two", "ready"], ["middleware.arca", "ready"], ["middleware.dator", "ready"]])
      expect(pidOf(after, "middleware.dator")).toBe(pidOf(before, "middleware.dator"))
      expect(pidOf(after, "middleware.arca")).toBe(pidOf(before, "middleware.arca"))
      expect(onePid !== null && isAlive(onePid)).toBe(false)
      const invoked = yield* Effect.promise(() =>
        control(host, "POST", "/v1/hooks/extra/invoke", { id: "env-1", hook: "extra", subject: "alice", payload: { text: "hi" } })
      )
      expect(invoked.status).toBe(200)
      expect((invoked.body as { steps: ReadonlyArray<{ component: string }> }).steps.map((step) => step.component)).toEqual(["extra.two"])

      Fs.writeFileSync(fragment("70-timeout.json"), JSON.stringify({ components: { "extra.two": { http: { request_timeout_ms: "5s" } } } }))
      Fs.writeFileSync(fragment("80-hooks.json"), JSON.stringify({ hooks: { extra: "extra.two" } }))
      // Each problem is its own stderr line: wait for the last one, not just the header.
      const refused = yield* hangUp(host, `${fragment("80-hooks.json")}: hooks.extra`)
      expect(refused).toContain("the config has 2 problems")
      expect(refused).toContain(`${fragment("70-timeout.json")}: components["extra.two"].http.request_timeout_ms`)
      expect(refused).toContain(`${fragment("80-hooks.json")}: hooks.extra`)
      const summary = (list: typeof before) => list.map((c) => [c.id, c.phase, c.pid]).sort()
      expect(summary(yield* components(host))).toEqual(summary(after))

      expect(yield* Effect.promise(() => host.stop())).toBe(0)
    }), { timeout: 60_000 })
})
