/**
 * The status page's files (`assets/status/` of this package): `GET /` is its `index.html`, `GET /assets/<name>`
 * any other file directly in that directory. Only names listed in the directory are served (no paths, no
 * traversal), with a content type from the extension; the files hold no data, so they need no login.
 */
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { Effect, Option } from "effect"
import { packageRoot } from "../../system/PackageRoot.js"

/** The status page's directory (`assets/status/` of this package, beside `dist/` and `src/`). */
export const bundledAssetsDir = Path.join(packageRoot, "assets", "status")

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8"
}

/** The content type a file is served with. */
export const contentTypeOf = (name: string): string => contentTypes[Path.extname(name).toLowerCase()] ?? "application/octet-stream"

/** A file of the page, ready to send. */
export interface Asset {
  readonly bytes: Uint8Array
  readonly contentType: string
}

// A plain file name: no separators, no leading dot (so neither "." nor ".." nor hidden files).
const plainName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** File `name` of `dir`, when it is a regular file listed there; none otherwise. */
export const readAsset = (dir: string, name: string): Effect.Effect<Option.Option<Asset>> =>
  Effect.promise(async () => {
    if (!plainName.test(name)) return Option.none()
    const entries = await Fs.readdir(dir, { withFileTypes: true }).catch(() => [])
    const entry = entries.find((candidate) => candidate.name === name && candidate.isFile())
    if (entry === undefined) return Option.none()
    const bytes = await Fs.readFile(Path.join(dir, entry.name)).catch(() => undefined)
    return bytes === undefined ? Option.none() : Option.some({ bytes, contentType: contentTypeOf(entry.name) })
  })
