/**
 * The `corral` CLI. `corral up` runs the host: bundled modules under supervision, the control API,
 * phases printed as they change; SIGTERM/SIGINT drains everything and exits 0.
 * `corral config show` prints the effective config; `corral broker hello|admin` talks to the broker.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { makeBrokerClient } from "../layers/broker/BrokerClient.js"
import { renderEffectiveConfig } from "../layers/host/ConfigLoader.js"
import { hostPaths, loadConfigFor, runHost } from "../layers/host/Host.js"
import { ModuleClientLive } from "../layers/host/ModuleClient.js"
import { ProcessLauncherLive } from "../layers/host/ProcessLauncher.js"
import { LoopbackPortsLive } from "../layers/system/LoopbackPorts.js"
import type { LifecycleEvent } from "../services/host/Supervisor.js"

const modulesDir = Path.resolve(import.meta.dirname, "..", "..", "modules")

const defaultDataDir = () => process.env["CORRAL_DATA_DIR"] ?? Path.join(Os.homedir(), ".local", "state", "corral")

const dataDirOption = Options.directory("data-dir").pipe(
  Options.withDescription("the host's data directory (default: $CORRAL_DATA_DIR or ~/.local/state/corral)"),
  Options.optional
)

const resolveDataDir = (option: Option.Option<string>) => Path.resolve(Option.getOrElse(option, defaultDataDir))

const stderrLine = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))
const stdoutJson = (value: unknown) => Effect.sync(() => process.stdout.write(`${JSON.stringify(value)}\n`))

/** Reports an expected failure once, in one line, and makes the exit code 1. */
const failWith = (text: string) =>
  Effect.zipRight(stderrLine(text), Effect.sync(() => {
    process.exitCode = 1
  }))

const printEvent = (event: LifecycleEvent) =>
  stderrLine(`${event.at}  ${event.component.padEnd(24)} ${event.from} → ${event.to}  ${event.reason}`)

const up = Command.make("up", { dataDir: dataDirOption }, ({ dataDir }) =>
  Effect.gen(function*() {
    const dir = resolveDataDir(dataDir)
    const host = yield* runHost({
      dataDir: dir,
      modulesDir,
      onLifecycle: printEvent,
      // `admin shutdown` on the broker stops the host the way SIGTERM does: one drain path.
      onShutdownRequest: Effect.sync(() => process.kill(process.pid, "SIGTERM"))
    })
    yield* stderrLine(`corral: control API on ${host.url} (token in ${host.tokenFile})`)
    yield* host.supervisor.startAll
    const components = yield* host.supervisor.list
    yield* stdoutJson({
      event: "up",
      url: host.url,
      data_dir: dir,
      components: components.map((c) => ({ id: c.id, phase: c.phase, pid: c.pid, last_error: c.last_error }))
    })
    yield* stderrLine(
      `corral: up — ${components.map((c) => `${c.id} ${c.phase}`).join(", ") || "no components"}; Ctrl-C stops everything`
    )
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(ProcessLauncherLive, ModuleClientLive, LoopbackPortsLive)),
    Effect.catchTags({
      ConfigError: (error) => failWith(`corral: config error: ${error.message}; nothing was started`),
      ServeError: (error) => failWith(`corral: cannot listen on ${error.address}: ${error.message}`),
      BoundedServerConfigError: (error) => failWith(`corral: ${error.message}`)
    }),
    Effect.ensuring(stderrLine("corral: stopped"))
  ))

const show = Command.make("show", { dataDir: dataDirOption }, ({ dataDir }) =>
  Effect.gen(function*() {
    const dir = resolveDataDir(dataDir)
    const loaded = yield* loadConfigFor({ dataDir: dir, modulesDir })
    const controlJson = hostPaths(dir).controlJson
    const control = Fs.existsSync(controlJson) ? JSON.parse(Fs.readFileSync(controlJson, "utf8")) as unknown : null
    yield* Console.log(renderEffectiveConfig(loaded, { data_dir: dir, modules_dir: modulesDir, sources: loaded.sources, control }))
  }).pipe(Effect.catchTag("ConfigError", (error) => failWith(`corral: config error: ${error.message}`))))

const config = Command.make("config").pipe(Command.withSubcommands([show]))

const brokerSocket = (dataDir: Option.Option<string>) => Path.join(resolveDataDir(dataDir), "run", "broker.sock")

const brokerHello = Command.make(
  "hello",
  {
    dataDir: dataDirOption,
    service: Args.text({ name: "service" }),
    version: Options.text("version").pipe(Options.withDescription("the version to ask for"), Options.optional)
  },
  ({ dataDir, service, version }) =>
    Effect.gen(function*() {
      const client = makeBrokerClient(brokerSocket(dataDir))
      const reply = yield* client.hello(service, Option.getOrUndefined(version))
      yield* Console.log(JSON.stringify(reply))
    }).pipe(Effect.catchTag("BrokerClientError", (error) => failWith(`corral: broker: ${error.message}`)))
)

const brokerAdmin = Command.make(
  "admin",
  {
    dataDir: dataDirOption,
    verb: Args.choice([["status", "status"], ["healthz", "healthz"], ["readyz", "readyz"], ["metrics", "metrics"], ["shutdown", "shutdown"]] as const, { name: "verb" }).pipe(Args.withDefault("status" as const))
  },
  ({ dataDir, verb }) =>
    Effect.gen(function*() {
      const reply = yield* makeBrokerClient(brokerSocket(dataDir)).admin(verb)
      yield* Console.log(JSON.stringify(reply.body, null, 2))
    }).pipe(Effect.catchTag("BrokerClientError", (error) => failWith(`corral: broker: ${error.message}`)))
)

const broker = Command.make("broker").pipe(Command.withSubcommands([brokerHello, brokerAdmin]))

const corral = Command.make("corral").pipe(Command.withSubcommands([up, config, broker]))

const cli = Command.run(corral, { name: "corral", version: "0.1.0" })

cli(process.argv).pipe(
  Effect.provide(
    Layer.mergeAll(NodeContext.layer, Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))
  ),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)

