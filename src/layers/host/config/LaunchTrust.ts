/**
 * The last load stage: what each component launches must pass the file-trust rule (owned by the
 * host's user or root, nothing on its path writable by group or others; `services/system/FileTrust`).
 * Checked: the executable (a bare name: every copy on the child's PATH, since the launcher may pick
 * another one for a module user; a script: its `#!` interpreter too) and every argument that names an
 * existing file by absolute path (the script an interpreter runs), and `launch.env_file` (it sets the
 * module's environment). A file that does not exist yet is left to the launcher, which reports it by
 * name. Problems are blamed on the fragment that set the path.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Either } from "effect"
import type { ComponentConfig, HostConfig } from "../../../services/host/HostConfig.js"
import type { UntrustedFile } from "../../../services/system/FileTrust.js"
import { substitutePlaceholders } from "../../../services/system/Placeholders.js"
import { checkExecutableTrusted, checkFileTrusted } from "../../system/FileTrust.js"
import { childEnvironment } from "../launcher/ChildEnvironment.js"
import { untrustedEnvFileReason } from "../launcher/EnvFile.js"
import { executableStatus } from "../launcher/SpawnChecks.js"
import type { ConfigPath, ConfigProblem } from "./ConfigProblem.js"
import { blame, type Provenance } from "./Provenance.js"

/** Whether `file` is an existing regular file (symlinks followed). */
const isFile = (file: string): boolean => Fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true

/** The files an executable setting may run: itself (against `cwd`), or every executable copy on PATH. */
const executableCandidates = (executable: string, cwd: string, searchPath: string): ReadonlyArray<string> =>
  executable.includes("/")
    ? [Path.resolve(cwd, executable)].filter(isFile)
    : searchPath.split(":").filter((dir) => dir !== "").map((dir) => Path.resolve(cwd, dir, executable))
      .filter((file) => executableStatus(file) === "ok")

/** The first distrusted file of `files` by `check`, if any. */
const firstUntrusted = (
  files: ReadonlyArray<string>,
  check: (file: string) => Effect.Effect<string, UntrustedFile>
): Effect.Effect<UntrustedFile | undefined> =>
  Effect.gen(function*() {
    for (const file of files) {
      const result = yield* Effect.either(check(file))
      if (Either.isLeft(result)) return result.left
    }
    return undefined
  })

/** The problems of one component's launch, at paths relative to `at`. */
const componentProblems = (
  id: string,
  component: ComponentConfig,
  at: ConfigPath
): Effect.Effect<ReadonlyArray<{ readonly path: ConfigPath; readonly reason: string }>> =>
  Effect.gen(function*() {
    const launch = component.launch
    if (launch === undefined || (component.kind !== "http_local_json" && component.kind !== "command_stdio")) return []
    // `{port}` and `{socket}` are only known at launch; what names a file is known now.
    const values = { component_id: id }
    const cwd = launch.cwd === undefined ? process.cwd() : Path.resolve(substitutePlaceholders(launch.cwd, values))
    const executable = substitutePlaceholders(launch.executable, values)
    // The PATH the launcher resolves a bare name through, so this checks the copies it may run.
    const searchPath = childEnvironment(launch.env).PATH ?? ""
    const problems: Array<{ readonly path: ConfigPath; readonly reason: string }> = []
    const untrustedRun = yield* firstUntrusted(executableCandidates(executable, cwd, searchPath), checkExecutableTrusted)
    if (untrustedRun !== undefined) {
      const via = executable.includes("/") ? "" : ` (${JSON.stringify(executable)} found in PATH)`
      problems.push({ path: [...at, "launch", "executable"], reason: `refusing to run${via} ${untrustedRun.message}` })
    }
    for (const [index, arg] of launch.args.entries()) {
      const file = substitutePlaceholders(arg, values)
      if (!Path.isAbsolute(file) || !isFile(file)) continue
      const untrusted = yield* firstUntrusted([file], (path) => checkFileTrusted(path))
      if (untrusted !== undefined) {
        problems.push({
          path: [...at, "launch", "args", index],
          reason: `refusing a launch argument that others could change (the component would run or read it): ${untrusted.message}`
        })
      }
    }
    // Resolved as the launch resolves it: against launch.cwd when given, else the host's working directory.
    const envFile = launch.env_file === undefined ? undefined : Path.resolve(cwd, substitutePlaceholders(launch.env_file, values))
    const untrustedEnv = envFile !== undefined && isFile(envFile) ? yield* firstUntrusted([envFile], (path) => checkFileTrusted(path)) : undefined
    if (untrustedEnv !== undefined) problems.push({ path: [...at, "launch", "env_file"], reason: untrustedEnvFileReason(untrustedEnv) })
    return problems
  })

/** Every launch-trust problem of `config`, in component order, each blamed on the fragment that set it. */
export const checkLaunchTrust = (config: HostConfig, provenance: Provenance): Effect.Effect<ReadonlyArray<ConfigProblem>> =>
  Effect.map(
    Effect.forEach(Object.entries(config.components), ([id, component]) => componentProblems(id, component, ["components", id])),
    (perComponent) => perComponent.flat().map((problem) => ({ file: blame(provenance, problem.path), ...problem }))
  )
