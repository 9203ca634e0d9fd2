/**
 * `module-isolated`: the private mount view a module runs in, built by Debian's bubblewrap (`bwrap`).
 * The view holds the system read-only (`/usr` and the `/bin`, `/lib*` links or dirs, a few `/etc`
 * files), a fresh `/proc`, `/dev` and a private `/tmp`, the module's own directory read-only at its real
 * path (with the bundled SDK beside it, `../sdk`, when there is one), and its work dir writable at
 * `ownDirMountPoint`. Nothing else of the host exists there: no data dir, no `run/`, no `/root`, no other
 * module. The network is not unshared (modules listen on the host's loopback).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { LaunchSpec } from "../../../services/host/ProcessLauncher.js"
import { executableStatus } from "./SpawnChecks.js"

/** bwrap and the system part of the view, found once at start. */
export interface BwrapTool {
  readonly bwrap: string
  /** bwrap options that put the system in the view read-only (computed from this machine's `/`). */
  readonly systemView: ReadonlyArray<string>
  /** Top-level paths the system view exposes (`/usr`, `/bin` …): an executable must live under one. */
  readonly systemRoots: ReadonlyArray<string>
}

/** What to tell the operator when bwrap is missing. */
export const bwrapMissing = "bwrap not found: sandbox \"module-isolated\" needs Debian's bubblewrap (apt-get install bubblewrap)"

/** Top-level entries put in the view: a symlink as the same symlink (merged /usr), a directory read-only. */
const systemEntries = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]

/**
 * `/etc` files the interpreter and libc may read (loader cache, time zone, users and groups by number,
 * name resolution of `localhost`, alternatives links); nothing else of `/etc` is in the view.
 */
const etcEntries = [
  "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd", "/etc/group",
  "/etc/nsswitch.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf", "/etc/alternatives"
]

/** The system part of the view on this machine: `/usr` read-only, then each of `systemEntries` that exists. */
const systemViewHere = (): Pick<BwrapTool, "systemView" | "systemRoots"> => {
  const view: Array<string> = ["--ro-bind", "/usr", "/usr"]
  const roots: Array<string> = ["/usr"]
  for (const entry of systemEntries) {
    const stat = Fs.lstatSync(entry, { throwIfNoEntry: false })
    if (stat === undefined) continue
    if (stat.isSymbolicLink()) view.push("--symlink", Fs.readlinkSync(entry), entry)
    else if (stat.isDirectory()) {
      view.push("--ro-bind", entry, entry)
      roots.push(entry)
    }
  }
  view.push("--dir", "/etc")
  for (const entry of etcEntries) view.push("--ro-bind-try", entry, entry)
  return { systemView: view, systemRoots: roots }
}

/** bwrap here, with this machine's system view; `undefined` when bwrap is not installed. */
export const findBwrap = (): BwrapTool | undefined => {
  if (process.platform !== "linux") return undefined
  const bwrap = ["/usr/bin/bwrap", "/bin/bwrap"].find((candidate) => executableStatus(candidate) === "ok")
  return bwrap === undefined ? undefined : { bwrap, ...systemViewHere() }
}

const isDirectory = (path: string): boolean => Fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() === true

/**
 * The module's own directory: `spec.moduleDir` when given (`launch.module_dir`), else the directory of
 * the first absolute argument naming an existing file (the script: `{module_dir}/dator.py`). Resolved
 * through symlinks; `undefined` when there is neither.
 */
export const moduleDirOf = (spec: Pick<LaunchSpec, "moduleDir" | "args">): string | undefined => {
  const script = spec.args.find((arg) => Path.isAbsolute(arg) && Fs.statSync(arg, { throwIfNoEntry: false })?.isFile() === true)
  const dir = spec.moduleDir ?? (script === undefined ? undefined : Path.dirname(script))
  if (dir === undefined || !isDirectory(dir)) return undefined
  return Fs.realpathSync(dir)
}

/**
 * The read-only directories of the view's module part: the module dir, and the bundled SDK beside it
 * (`<modules>/sdk` for `<modules>/<m>`, which the bundled modules import as `../sdk`) when it exists.
 */
export const moduleDirsOf = (moduleDir: string): ReadonlyArray<string> => {
  const sdk = Path.join(Path.dirname(moduleDir), "sdk")
  return sdk !== moduleDir && isDirectory(sdk) ? [moduleDir, Fs.realpathSync(sdk)] : [moduleDir]
}

const inside = (path: string, root: string): boolean => path === root || path.startsWith(root === "/" ? "/" : `${root}/`)

/** Why `executable` (resolved) is not reachable in the view, or `undefined` when it is. */
export const outsideView = (executable: string, tool: BwrapTool, moduleDirs: ReadonlyArray<string>): string | undefined => {
  const real = Fs.realpathSync(executable)
  const roots = [...tool.systemRoots, ...moduleDirs]
  return roots.some((root) => inside(real, root))
    ? undefined
    : `executable ${executable} (${real}) is outside the "module-isolated" view, which holds only ${roots.join(", ")}; ` +
      "use the system interpreter (/usr/bin/python3) or put the program in the module's directory"
}

/** `--dir` for each ancestor of `path` under `/` that the view does not hold yet, outermost first. */
const ancestorDirs = (path: string, made: Set<string>): ReadonlyArray<string> => {
  const options: Array<string> = []
  const ancestors: Array<string> = []
  for (let dir = Path.dirname(path); dir !== Path.dirname(dir); dir = Path.dirname(dir)) ancestors.unshift(dir)
  for (const dir of ancestors) {
    if (made.has(dir)) continue
    made.add(dir)
    // Created 0755: bwrap's default for a parent it makes on its own is 0700, which the module user cannot cross.
    options.push("--perms", "0755", "--dir", dir)
  }
  return options
}

/**
 * The options of `bwrap` (pure), up to and including `--`: the system view, `/proc`, `/dev`, a private `/tmp`
 * (1777, empty), `moduleDirs` read-only at their own paths, `workDir` writable at `mountPoint` and the
 * working directory; bwrap dies with its parent. No `--new-session`: the host already starts every child
 * in a session of its own with no terminal, and a new session would take the module out of the process
 * group the host's TERM goes to. No `--unshare-net`: modules listen on the host's loopback.
 */
export const bwrapOptions = (
  tool: BwrapTool,
  view: { readonly moduleDirs: ReadonlyArray<string>; readonly workDir: string; readonly mountPoint: string }
): ReadonlyArray<string> => {
  const made = new Set<string>(["/", "/etc", "/tmp", ...tool.systemRoots])
  // A module dir under /usr is in the view already (read-only); binding it again would need a mount point there.
  const modules = view.moduleDirs
    .filter((dir) => !tool.systemRoots.some((root) => inside(dir, root)))
    .flatMap((dir) => [...ancestorDirs(dir, made), "--ro-bind", dir, dir])
  return [
    "--die-with-parent",
    "--unshare-ipc",
    ...tool.systemView,
    "--proc", "/proc",
    "--dev", "/dev",
    "--perms", "1777", "--tmpfs", "/tmp",
    ...modules,
    "--bind", view.workDir, view.mountPoint,
    "--chdir", view.mountPoint,
    "--"
  ]
}
