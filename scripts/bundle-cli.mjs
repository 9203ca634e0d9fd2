// Bundles the built CLI (dist/programs/corral.js) into dist/bin/corral.js with esbuild: loading ~700
// separate ESM modules of effect and @effect/cli costs ~0.6 s per run, which `corral status` cannot
// afford (bench/README.md, "CLI status"). Each command's lazy import() stays a chunk of its own.
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const outdir = path.join(root, "dist", "bin")
fs.rmSync(outdir, { recursive: true, force: true })
await esbuild.build({
  entryPoints: { corral: path.join(root, "dist", "programs", "corral.js") },
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  logLevel: "warning",
  // A few CommonJS dependencies call require(); an ESM bundle has none of its own.
  banner: { js: "import { createRequire as corralCreateRequire } from \"node:module\"; const require = corralCreateRequire(import.meta.url);" }
})
const entry = path.join(outdir, "corral.js")
fs.writeFileSync(entry, `#!/usr/bin/env node\n${fs.readFileSync(entry, "utf8")}`)
fs.chmodSync(entry, 0o755)
