/**
 * The `corral` CLI. `corral up` runs the host (`HostLive`) until SIGTERM/SIGINT, which drains it;
 * `corral config show` prints the effective config; `corral broker hello|admin` talks to the broker.
 */
import { Args, Command, Options } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Console, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { makeBrokerClient } from "../layers/broker/BrokerClient.js"
import { showConfig } from "../layers/cli/ConfigShow.js"
import { hostPathsFor } from "../layers/cli/HostLocation.js"
import { HostUp, printLifecycleEvent } from "../layers/cli/HostUp.js"
import { logUnreported, reportFailure, stderrLine } from "../layers/cli/Terminal.js"
import { HostLive } from "../layers/host/HostLive.js"
import { runMain } from "../layers/system/ProcessMain.js"

const dataDirOption = Options.text("data-dir").pipe(
  Options.withDescription("the host's data directory (default: $CORRAL_DATA_DIR or ~/.local/state/corral)"),
  Options.optional
)

const up = Command.make("up", { dataDir: dataDirOption }, ({ dataDir }) => {
  const paths = hostPathsFor(dataDir)
  const host = HostLive({
    dataDir: paths.dataDir,
    modulesDir: paths.modulesDir,
    onLifecycle: printLifecycleEvent,
    // `admin shutdown` on the broker stops the host the way SIGTERM does: one drain path.
    onShutdownRequest: Effect.sync(() => process.kill(process.pid, "SIGTERM"))
  })
  return Layer.launch(HostUp.pipe(Layer.provide(host))).pipe(
    Effect.catchTags({
      ConfigError: (error) => reportFailure(`corral: config error: ${error.message}; nothing was started`),
      HostAlreadyRunning: (error) => reportFailure(`corral: ${error.message}; nothing was started`),
      DataDirError: (error) => reportFailure(`corral: cannot prepare the data dir ${error.path}: ${error.message}; nothing was started`),
      HostLockError: (error) => reportFailure(`corral: cannot take the data dir's lock ${error.lockFile}: ${error.message}`),
      ServeError: (error) => reportFailure(`corral: cannot listen on ${error.address}: ${error.message}`),
      BoundedServerConfigError: (error) => reportFailure(`corral: ${error.message}`)
    }),
    Effect.ensuring(stderrLine("corral: stopped"))
  )
})

const show = Command.make("show", { dataDir: dataDirOption }, ({ dataDir }) =>
  showConfig(hostPathsFor(dataDir)).pipe(
    Effect.catchTag("ConfigError", (error) => reportFailure(`corral: config error: ${error.message}`))
  ))

const config = Command.make("config").pipe(Command.withSubcommands([show]))

const brokerHello = Command.make(
  "hello",
  {
    dataDir: dataDirOption,
    service: Args.text({ name: "service" }),
    version: Options.text("version").pipe(Options.withDescription("the version to ask for"), Options.optional)
  },
  ({ dataDir, service, version }) =>
    makeBrokerClient(hostPathsFor(dataDir).brokerSocket).hello(service, Option.getOrUndefined(version)).pipe(
      Effect.flatMap((reply) => Console.log(JSON.stringify(reply))),
      Effect.catchTag("BrokerClientError", (error) => reportFailure(`corral: broker: ${error.message}`))
    )
)

const brokerAdmin = Command.make(
  "admin",
  {
    dataDir: dataDirOption,
    verb: Args.choice([["status", "status"], ["healthz", "healthz"], ["readyz", "readyz"], ["metrics", "metrics"], ["shutdown", "shutdown"]] as const, { name: "verb" }).pipe(Args.withDefault("status" as const))
  },
  ({ dataDir, verb }) =>
    makeBrokerClient(hostPathsFor(dataDir).brokerSocket).admin(verb).pipe(
      Effect.flatMap((reply) => Console.log(JSON.stringify(reply.body, null, 2))),
      Effect.catchTag("BrokerClientError", (error) => reportFailure(`corral: broker: ${error.message}`))
    )
)

const broker = Command.make("broker").pipe(Command.withSubcommands([brokerHello, brokerAdmin]))

const corral = Command.make("corral").pipe(Command.withSubcommands([up, config, broker]))

const cli = Command.run(corral, { name: "corral", version: "0.1.0" })

cli(process.argv).pipe(
  Effect.tapErrorCause(logUnreported),
  Effect.provide(
    Layer.mergeAll(NodeContext.layer, Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))
  ),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  runMain
)
