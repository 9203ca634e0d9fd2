import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ConfigLoaderLive } from "../../../../src/layers/host/config/ConfigLoader.js"
import { hostDefaults } from "../../../../src/layers/host/hostDefaults.js"
import { ConfigLoader, hostDefaultsSource } from "../../../../src/services/host/ConfigLoader.js"

const roots: Array<string> = []
afterEach(() => {
  for (const root of roots.splice(0)) Fs.rmSync(root, { recursive: true, force: true })
})

/** A data directory whose `config/10-control.json` sets the control port. */
const dataDirWithPort = (port: number) => {
  const root = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "corral-config-live-"))
  roots.push(root)
  const file = NodePath.join(root, "data", "config", "10-control.json")
  Fs.mkdirSync(NodePath.dirname(file), { recursive: true })
  Fs.writeFileSync(file, JSON.stringify({ host: { control: { port } } }))
  return { file, options: { modulesDir: NodePath.join(root, "modules"), dataDir: NodePath.join(root, "data"), hostDefaults } }
}

describe("ConfigLoaderLive", () => {
  it.effect("loads the layered config through the ConfigLoader service, reading the files on every load", () =>
    Effect.gen(function*() {
      const { file, options } = dataDirWithPort(4100)
      yield* Effect.gen(function*() {
        const loader = yield* ConfigLoader
        const first = yield* loader.load
        expect(first.config.host.control.port).toBe(4100)
        expect(first.sources).toEqual([hostDefaultsSource, file])
        expect(first.provenance("host.control.port")).toBe(file)
        expect(yield* loader.validateAll).toEqual([])

        Fs.writeFileSync(file, JSON.stringify({ host: { control: { port: 4200 } } }))
        expect((yield* loader.load).config.host.control.port).toBe(4200)
      }).pipe(Effect.provide(ConfigLoaderLive(options)))
    }))

  it.effect("fails load with the file, path and reason, and validateAll lists the problem", () =>
    Effect.gen(function*() {
      const { file, options } = dataDirWithPort(4100)
      Fs.writeFileSync(file, JSON.stringify({ host: { control: { port: "4100" } } }))
      yield* Effect.gen(function*() {
        const loader = yield* ConfigLoader
        const error = yield* Effect.flip(loader.load)
        expect({ file: error.file, path: error.path }).toEqual({ file, path: "host.control.port" })
        const problems = yield* loader.validateAll
        expect(problems.map((problem) => problem.message)).toEqual([error.message])
      }).pipe(Effect.provide(ConfigLoaderLive(options)))
    }))
})
