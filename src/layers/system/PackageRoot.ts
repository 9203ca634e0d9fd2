/**
 * Where this package's own files are (`modules/`, `assets/`): the nearest directory above the running
 * code that holds a `package.json`. The same from `src/` (tests), `dist/` (tsc output) and `dist/bin/`
 * (the bundled CLI), which sit at different depths.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

const findPackageRoot = (from: string): string => {
  for (let dir = from; ; dir = Path.dirname(dir)) {
    if (Fs.existsSync(Path.join(dir, "package.json"))) return dir
    // Not inside a package at all: the paths built on it then name where the files were looked for.
    if (Path.dirname(dir) === dir) return from
  }
}

/** The root of this package (where `package.json`, `modules/` and `assets/` are). */
export const packageRoot: string = findPackageRoot(import.meta.dirname)
