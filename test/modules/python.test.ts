import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync, existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { HostConfig } from "../../src/services/host/HostConfig.js"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))
const modulesDir = join(repoRoot, "modules")

describe("bundled Python modules", () => {
  it("pass their unittest suite (SDK, Dator, Arca)", () => {
    const run = spawnSync("python3", ["-m", "unittest", "discover", "-s", "modules/tests", "-t", "."], {
      cwd: repoRoot,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" }
    })
    if (run.error !== undefined || run.status !== 0) {
      console.error(`python3 unittest: status ${String(run.status)} signal ${String(run.signal)} error ${String(run.error)}`)
      console.error(`--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`)
    }
    expect(run.error).toBeUndefined()
    expect(run.status).toBe(0)
  }, 90_000)

  it("ship factory config fragments that decode as HostConfig", () => {
    const fragments = readdirSync(modulesDir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(join(modulesDir, entry.name, "config")))
      .flatMap((entry) =>
        readdirSync(join(modulesDir, entry.name, "config"))
          .filter((file) => file.endsWith(".json"))
          .map((file) => join(entry.name, "config", file))
      )
      .sort()
    expect(fragments).toEqual(["arca/config/10-arca.json", "arca/config/20-hooks.json", "dator/config/10-dator.json"])
    for (const fragment of fragments) {
      const json: unknown = JSON.parse(readFileSync(join(modulesDir, fragment), "utf8"))
      const decoded = Schema.decodeUnknownEither(HostConfig)(json)
      if (decoded._tag === "Left") console.error(fragment, String(decoded.left))
      expect(decoded._tag).toBe("Right")
    }
    const dator = Schema.decodeUnknownSync(HostConfig)(
      JSON.parse(readFileSync(join(modulesDir, "dator/config/10-dator.json"), "utf8"))
    ).components["middleware.dator"]
    expect(dator?.kind).toBe("http_local_json")
    expect(dator?.http?.invoke_path).toBe("/v1/middleware/invoke")
    expect(dator?.http?.init_path).toBe("/v1/middleware/init")
  })
})
