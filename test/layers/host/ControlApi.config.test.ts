/**
 * The config routes on the real control server: `GET /v1/config` is redacted and names its source files;
 * `POST /v1/reload` answers what changed, or 422 `config_invalid` listing the problems and changing nothing.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startControlHost } from "./control/controlHost.js"

const withSecret = { components: { "middleware.dator": { launch: { env: { DATOR_API_KEY: "s3cret-value" } } } } }

describe("control API: config and reload", () => {
  it.scopedLive("GET /v1/config redacts secret-looking values and lists the fragments it was merged from", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost(withSecret)
      const answer = yield* host.call("/v1/config")
      expect(answer.status).toBe(200)
      expect(answer.body).not.toContain("s3cret-value")
      const { config, sources } = JSON.parse(answer.body) as {
        config: { components: Record<string, { launch: { env: Record<string, string> } }> }
        sources: ReadonlyArray<string>
      }
      expect(config.components["middleware.dator"]?.launch.env["DATOR_API_KEY"]).toBe("<redacted>")
      expect(sources).toContain(Path.join(host.dataDir, "config", "10-test.json"))
    }))

  it.scopedLive("POST /v1/reload answers 422 with every problem and changes nothing, then 200 once fixed", () =>
    Effect.gen(function*() {
      const host = yield* startControlHost()
      const before = JSON.parse((yield* host.call("/v1/components/middleware.dator")).body) as { pid: number }
      const broken = Path.join(host.dataDir, "config", "20-broken.json")
      Fs.writeFileSync(broken, JSON.stringify({ host: { control: { max_connections: "many" } }, hooks: { ingress: ["no.such.component"] } }))
      const refused = yield* host.call("/v1/reload", { method: "POST" })
      expect(refused.status).toBe(422)
      const body = JSON.parse(refused.body) as { error: string; message: string; problems: ReadonlyArray<string> }
      expect(body.error).toBe("config_invalid")
      expect(body.problems.length).toBeGreaterThanOrEqual(1)
      expect(body.problems.join("\n")).toContain("20-broken.json")
      Fs.rmSync(broken)
      const applied = yield* host.call("/v1/reload", { method: "POST" })
      expect(applied.status).toBe(200)
      expect(JSON.parse(applied.body)).toMatchObject({ unchanged: expect.arrayContaining(["middleware.dator", "middleware.arca"]), hooks: ["ingress"] })
      const after = JSON.parse((yield* host.call("/v1/components/middleware.dator")).body) as { pid: number }
      expect(after.pid).toBe(before.pid)
    }))
})
