/**
 * Config test trees: a temp dir with `modules/` and `data/` holding the fragments a test names, and
 * the loader options on them. `removeConfigTrees` (from `afterEach`) removes every tree made.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { hostDefaults } from "../../../../src/layers/host/hostDefaults.js"

const roots: Array<string> = []

/** Removes every tree `configTree` made. */
export const removeConfigTrees = (): void => {
  for (const root of roots.splice(0)) Fs.rmSync(root, { recursive: true, force: true })
}

/** A temp tree (its root 0700, as mkdtemp makes it); string contents are written as-is, anything else as JSON. */
export const configTree = (files: Readonly<Record<string, unknown>>) => {
  const root = Fs.realpathSync(Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "corral-config-")))
  roots.push(root)
  for (const [relative, content] of Object.entries(files)) {
    const file = NodePath.join(root, relative)
    Fs.mkdirSync(NodePath.dirname(file), { recursive: true })
    Fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content, null, 2))
  }
  return {
    root,
    file: (relative: string) => NodePath.join(root, relative),
    options: { modulesDir: NodePath.join(root, "modules"), dataDir: NodePath.join(root, "data"), hostDefaults }
  }
}
