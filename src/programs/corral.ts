/**
 * The `corral` CLI. `corral up` runs the host until SIGTERM/SIGINT drain it; the other commands talk to
 * the host running in the data dir (`status`, `logs`, `start|stop|restart`, `invoke`, `events`,
 * `metrics`, `reload`, `open`), read its files (`trace`, `config`), or talk to its broker (`broker`).
 * Each command imports what it needs when it runs, so `corral status` never loads the host's layers.
 */
// Module paths, not the packages' index files: `corral status` must start fast, and an index loads every module of its package.
import * as Args from "@effect/cli/Args"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { Console, Effect, HashMap, Layer, Logger, LogLevel, Option } from "effect"
import { endEarlyQuietly } from "../layers/cli/ClientInterruption.js"
import { commandShape } from "../layers/cli/CommandShape.js"
import { ControlCallError, type ControlEndpoint, locateHost } from "../layers/cli/ControlClient.js"
import type { EnvelopeSource } from "../layers/cli/HostCommands.js"
import { hostPathsFor, hostTargetFor } from "../layers/cli/HostLocation.js"
import { failureExitCode, logUnreported, reportFailure, reportUsage } from "../layers/cli/Terminal.js"
import { cliConsole } from "../layers/cli/TerminalStyle.js"
import { missingSubcommandLine, usageLine } from "../layers/cli/UsageLine.js"
import { ownVersionAlias, routeVersionFlag } from "../layers/cli/VersionFlag.js"
import { runMain } from "../layers/system/ProcessMain.js"

const dataDirOption = Options.text("data-dir").pipe(
  Options.withDescription("the host's data directory (default: $CORRAL_DATA_DIR or ~/.local/state/corral)"),
  Options.optional
)
const jsonOption = Options.boolean("json").pipe(Options.withDescription("print JSON instead of a table"))
const componentArg = Args.text({ name: "id" }).pipe(Args.withDescription("a component id, e.g. middleware.dator"))

/** An integer option checked against bounds at parse time, so a bad value is a usage error. */
const boundedInteger = (name: string, min: number, max: number) =>
  Options.integer(name).pipe(Options.mapEffect((value) =>
    value >= min && value <= max
      ? Effect.succeed(value)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be between ${min} and ${max}, got ${value}`)))
  ))

/** Runs `f` against the host in the data dir; no host, or a call that fails, is one line and exit 1. */
const withHost = <E, R>(dataDir: Option.Option<string>, f: (endpoint: ControlEndpoint) => Effect.Effect<void, E, R>) =>
  Effect.flatMap(locateHost(hostTargetFor(dataDir)), f).pipe(
    Effect.catchIf((error): error is ControlCallError => error instanceof ControlCallError, (error) => reportFailure(`corral: ${error.message}`))
  )

/** A command that talks to a host or reads files: Ctrl-C, or its reader going away, ends it at once and quietly (`ClientInterruption`). */
const client = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>) =>
  Command.transformHandler(command, (effect) => endEarlyQuietly(effect))

const components = () => import("../layers/cli/ComponentCommands.js")
const hostCommands = () => import("../layers/cli/HostCommands.js")

const up = Command.make("up", { dataDir: dataDirOption }, ({ dataDir }) =>
  Effect.flatMap(Effect.promise(() => import("../layers/cli/UpCommand.js")), ({ runUp }) => runUp(hostPathsFor(dataDir))))
  .pipe(Command.withDescription("run the host in the foreground until Ctrl-C or SIGTERM"))

const status = Command.make("status", { dataDir: dataDirOption, json: jsonOption }, ({ dataDir, json }) =>
  withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(components), (c) => c.status(endpoint, json))))
  .pipe(Command.withDescription("every component: phase, pid, uptime, restarts, last error (--json: GET /v1/components)"), client)

const logs = Command.make(
  "logs",
  {
    dataDir: dataDirOption,
    id: componentArg,
    lines: boundedInteger("lines", 0, 10_000).pipe(Options.withAlias("n"), Options.withDefault(100), Options.withDescription("how many of the last lines")),
    follow: Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("keep printing new lines"))
  },
  ({ dataDir, id, lines, follow }) => withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(components), (c) => c.logs(endpoint, id, lines, follow)))
).pipe(Command.withDescription("a component's stdout and stderr"), client)

const action = (name: "start" | "stop" | "restart") =>
  Command.make(
    name,
    {
      dataDir: dataDirOption,
      json: jsonOption,
      id: componentArg,
      wait: Options.boolean("wait").pipe(Options.withDescription("wait until the phase settles; exit 0 only if it is the one asked for")),
      timeout: boundedInteger("timeout", 1, 300).pipe(Options.withDescription("seconds --wait waits (default 30)"), Options.optional)
    },
    ({ dataDir, json, id, wait, timeout }) =>
      withHost(dataDir, (endpoint) =>
        Effect.flatMap(Effect.promise(components), (c) =>
          c.act(endpoint, name, id, wait || Option.isSome(timeout) ? Option.getOrElse(timeout, () => 30) : undefined, json)))
  ).pipe(Command.withDescription(`${name} a component; with --wait, exit 0 only once it is ${name === "stop" ? "stopped" : "ready"}`), client)

const invoke = Command.make(
  "invoke",
  {
    dataDir: dataDirOption,
    json: jsonOption,
    hook: Args.text({ name: "hook" }),
    inline: Args.text({ name: "envelope-json" }).pipe(Args.withDescription("the WorkflowEnvelope as JSON, or - to read it from stdin"), Args.optional),
    file: Options.file("envelope", { exists: "yes" }).pipe(Options.withDescription("read the WorkflowEnvelope from this file"), Options.optional)
  },
  ({ dataDir, json, hook, inline, file }) =>
    Effect.gen(function*() {
      if (Option.isSome(inline) && Option.isSome(file)) {
        return yield* reportUsage("corral: give the envelope once: as an argument, as - (stdin) or with --envelope FILE (see 'corral invoke --help')")
      }
      const source: EnvelopeSource = Option.isSome(file)
        ? { _tag: "File", path: file.value }
        : Option.match(inline, {
          onNone: (): EnvelopeSource => ({ _tag: "None" }),
          onSome: (text): EnvelopeSource => text === "-" ? { _tag: "Stdin" } : { _tag: "Inline", json: text }
        })
      return yield* withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(hostCommands), (h) => h.invoke(endpoint, hook, source, json)))
    })
).pipe(Command.withDescription("run a hook once with an envelope (default: an empty payload from subject \"cli\")"), client)

const events = Command.make("events", { dataDir: dataDirOption, json: jsonOption }, ({ dataDir, json }) =>
  withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(() => import("../layers/cli/EventsCommand.js")), (e) => e.followEvents(endpoint, json))))
  .pipe(Command.withDescription("follow the host's events: phase changes, health, invocations, broker, reloads"), client)

const trace = Command.make(
  "trace",
  {
    dataDir: dataDirOption,
    json: jsonOption,
    kind: Args.choice([["lifecycle", "lifecycle"], ["invocation", "invocation"]] as const, { name: "trace" }),
    component: Options.text("component").pipe(Options.withDescription("only records about this component"), Options.optional),
    since: Options.text("since").pipe(
      Options.withDescription("only records since then: a duration back from now (90s, 15m, 1h30m, 2d) or an ISO 8601 time (2026-01-31T14:00:00Z)"),
      Options.mapEffect((text) =>
        Effect.flatMap(Effect.promise(() => import("../layers/cli/TraceCommand.js")), ({ parseSince, sinceForms }) =>
          Option.match(parseSince(text, Date.now()), {
            onNone: () => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--since takes ${sinceForms}; got '${text}'`))),
            onSome: Effect.succeed
          }))
      ),
      Options.optional
    ),
    follow: Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("keep printing new records"))
  },
  ({ dataDir, json, kind, component, since, follow }) =>
    Effect.flatMap(Effect.promise(() => import("../layers/cli/TraceCommand.js")), ({ showTrace }) =>
      showTrace(hostPathsFor(dataDir).dataDir, {
        kind,
        component: Option.getOrUndefined(component),
        since: Option.getOrUndefined(since),
        follow,
        json
      }))
).pipe(Command.withDescription("read the lifecycle or invocation trace of the data dir"), client)

const metrics = Command.make("metrics", { dataDir: dataDirOption }, ({ dataDir }) =>
  withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(hostCommands), (h) => h.metrics(endpoint))))
  .pipe(Command.withDescription("the host's Prometheus metrics"), client)

const reload = Command.make("reload", { dataDir: dataDirOption, json: jsonOption }, ({ dataDir, json }) =>
  withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(hostCommands), (h) => h.reload(endpoint, json))))
  .pipe(Command.withDescription("re-read the config: start new components, stop removed ones, restart changed ones"), client)

const open = Command.make("open", { dataDir: dataDirOption, json: jsonOption }, ({ dataDir, json }) =>
  withHost(dataDir, (endpoint) => Effect.flatMap(Effect.promise(hostCommands), (h) => h.open(endpoint, json))))
  .pipe(Command.withDescription("print a one-time login link to the status page"), client)

const configCommands = () => import("../layers/cli/ConfigShow.js")

const show = Command.make("show", { dataDir: dataDirOption, json: jsonOption }, ({ dataDir, json }) =>
  Effect.flatMap(Effect.promise(configCommands), (c) => c.showConfig(hostPathsFor(dataDir), json)).pipe(
    Effect.catchTag("ConfigError", (error) => reportFailure(`corral: config error: ${error.message} (corral config check lists every problem)`))
  )).pipe(Command.withDescription("the effective config, secrets redacted (--json: with the runtime facts)"), client)

const check = Command.make("check", { dataDir: dataDirOption }, ({ dataDir }) =>
  Effect.flatMap(Effect.promise(configCommands), (c) => c.checkConfig(hostPathsFor(dataDir))))
  .pipe(Command.withDescription("every problem of the config, each with its file"), client)

const schema = Command.make("schema", {}, () => Effect.flatMap(Effect.promise(configCommands), (c) => c.printConfigSchema))
  .pipe(Command.withDescription("the JSON Schema of a config fragment, for editors"), client)

/** A command group's own handler: typed without one of its commands, it is a usage error naming them. */
const needsSubcommand = (name: string, names: ReadonlyArray<string>) => () => reportUsage(missingSubcommandLine([name], names))

const config = Command.make("config", {}, needsSubcommand("config", ["show", "check", "schema"])).pipe(
  Command.withDescription("the config of the data dir: show, check, schema"),
  Command.withSubcommands([show, check, schema])
)

const brokerClient = (dataDir: Option.Option<string>) =>
  Effect.map(Effect.promise(() => import("../layers/broker/BrokerClient.js")), ({ makeBrokerClient }) => makeBrokerClient(hostPathsFor(dataDir).brokerSocket))

const brokerHello = Command.make(
  "hello",
  {
    dataDir: dataDirOption,
    service: Args.text({ name: "service" }),
    version: Options.text("version").pipe(Options.withAlias(ownVersionAlias), Options.withDescription("the version to ask for"), Options.optional)
  },
  ({ dataDir, service, version }) =>
    Effect.flatMap(brokerClient(dataDir), (client) => client.hello(service, Option.getOrUndefined(version))).pipe(
      Effect.flatMap((reply) => Console.log(JSON.stringify(reply))),
      Effect.catchTag("BrokerClientError", (error) => reportFailure(`corral: broker: ${error.message}`))
    )
).pipe(Command.withDescription("ask the broker for a backend of a service (launched if none runs); prints its hello.ok reply as JSON"), client)

const brokerAdmin = Command.make(
  "admin",
  {
    dataDir: dataDirOption,
    verb: Args.choice([["status", "status"], ["healthz", "healthz"], ["readyz", "readyz"], ["metrics", "metrics"], ["shutdown", "shutdown"]] as const, { name: "verb" }).pipe(Args.withDefault("status" as const))
  },
  ({ dataDir, verb }) =>
    Effect.flatMap(brokerClient(dataDir), (client) => client.admin(verb)).pipe(
      Effect.flatMap((reply) => Console.log(JSON.stringify(reply.body, null, 2))),
      Effect.catchTag("BrokerClientError", (error) => reportFailure(`corral: broker: ${error.message}`))
    )
).pipe(Command.withDescription("an admin verb on the broker (default: status); prints its reply as JSON"), client)

const broker = Command.make("broker", {}, needsSubcommand("broker", ["hello", "admin"])).pipe(
  Command.withDescription("talk to the host's broker: hello, admin"),
  Command.withSubcommands([brokerHello, brokerAdmin])
)

const [start, stop, restart] = [action("start"), action("stop"), action("restart")]

const corral = Command.make("corral").pipe(
  Command.withDescription("Run `corral <command> --help` for a command's options; `corral --version` prints the version."),
  Command.withSubcommands([up, status, logs, start, stop, restart, invoke, events, trace, metrics, reload, open, config, broker])
)

const cli = Command.run(corral, { name: "corral", version: "0.1.0" })
const argv = routeVersionFlag(process.argv)
// The commands and their valued options, so a usage error names what the user typed and the right `--help`.
const shape = commandShape(
  [[[], [...HashMap.keys(Command.getSubcommands(corral))]], [["config"], [...HashMap.keys(Command.getSubcommands(config))]], [["broker"], [...HashMap.keys(Command.getSubcommands(broker))]]],
  [
    Command.getUsage(up), Command.getUsage(status), Command.getUsage(logs), Command.getUsage(start), Command.getUsage(stop), Command.getUsage(restart),
    Command.getUsage(invoke), Command.getUsage(events), Command.getUsage(trace), Command.getUsage(metrics), Command.getUsage(reload), Command.getUsage(open),
    Command.getUsage(show), Command.getUsage(check), Command.getUsage(schema), Command.getUsage(brokerHello), Command.getUsage(brokerAdmin)
  ]
)

cli(argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, (error) => reportUsage(usageLine(error, argv.slice(2), shape))),
  (program) => Console.consoleWith((base) => Effect.withConsole(program, cliConsole(base))),
  Effect.tapErrorCause(logUnreported),
  Effect.provide(Layer.mergeAll(
    NodeFileSystem.layer,
    NodePath.layer,
    NodeTerminal.layer,
    // Help shows Corral's commands and options, not the library's --completions, --log-level and --wizard.
    CliConfig.layer({ showBuiltIns: false }),
    // Logs go straight to stderr: the Console is @effect/cli's, and its `error` is silenced (see cliConsole).
    Logger.replace(Logger.defaultLogger, Logger.make((options) => process.stderr.write(`${Logger.logfmtLogger.log(options)}\n`)))
  )),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  (program) => runMain(program, { failureExitCode })
)
