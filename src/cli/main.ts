/**
 * The netjail executable: the argv pre-pass, then @effect/cli, then the
 * sandbox on the Linux layer. It maps every way a run can end to one exit
 * status and prints one message for a failure.
 */
import { Command, Options, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Effect, Either, Exit, Layer, Logger } from "effect"
import { exitCodeFor } from "../domain/errors.js"
import { layerLinux } from "../linux/layer.js"
import { parseArgv } from "./argv.js"
import { invocationOf, rootCommand } from "./command.js"
import { demo } from "./demo.js"
import { list } from "./list.js"
import { dryRun, runInSandbox } from "./run.js"
import * as Signals from "./signals.js"

declare const NETJAIL_VERSION: string | undefined
const version = typeof NETJAIL_VERSION === "string" ? NETJAIL_VERSION : "development"

const fail = (message: string, code: number): never => {
  process.stderr.write(`Error: ${message}\n`)
  process.exit(code)
}

/**
 * netjail's own logs are warnings for the user: on stderr, never amid the
 * command's stdout; with --json each is a JSON line of its own, like the summary.
 */
const warningsOnStderr = (output: "table" | "quiet" | "json") =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      if (output === "quiet" || logLevel._tag === "Debug" || logLevel._tag === "Trace" || logLevel._tag === "Info") return
      const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
      process.stderr.write(output === "json" ? JSON.stringify({ warning: text }) + "\n" : `Warning: ${text}\n`)
    })
  )

const main = () => {
  // a reader that went away (a closed pipe) must not crash netjail before it cleans up
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {})
  const parsed = parseArgv(process.argv.slice(2))
  if (Either.isLeft(parsed)) return fail(parsed.left.message, exitCodeFor(parsed.left))
  const argv = parsed.right

  let status = 0
  const demoCommand = Command.make("demo", {}, () => Effect.map(demo, (code) => void (status = code))).pipe(
    Command.withDescription("build a throwaway lab namespace, run a first sandbox in it, and remove the lab")
  )
  const listCommand = Command.make(
    "list",
    { json: Options.boolean("json").pipe(Options.withDescription("one JSON object on stdout")) },
    ({ json }) => Effect.map(list(json), (code) => void (status = code))
  ).pipe(Command.withDescription("the running sandboxes: netjail's pid, device, interface, address, state, command"))
  const cli = Command.run(
    rootCommand((options) =>
      Effect.gen(function*() {
        const invocation = yield* invocationOf(argv, options)
        status = yield* (invocation.dryRun ? dryRun(invocation) : runInSandbox(invocation))
      })
    ).pipe(Command.withSubcommands([demoCommand, listCommand])),
    { name: "netjail", version }
  )
  const program = cli(["node", "netjail", ...argv.cliArgs]).pipe(
    Effect.provide(Layer.mergeAll(layerLinux(), NodeContext.layer, warningsOnStderr(
      argv.cliArgs.includes("--json") ? "json" : argv.cliArgs.includes("--quiet") ? "quiet" : "table"
    )))
  )

  let signalled: NodeJS.Signals | undefined
  const fiber = Effect.runFork(program)
  Signals.install((signal) => {
    signalled = signal
    fiber.unsafeInterruptAsFork(fiber.id())
  })
  fiber.addObserver((exit) => {
    if (Exit.isSuccess(exit)) return process.exit(status)
    if (Cause.isInterruptedOnly(exit.cause)) return process.exit(128 + Signals.signalNumber(signalled ?? "SIGINT"))
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some") {
      // @effect/cli has already shown its own validation errors with the usage
      if (ValidationError.isValidationError(failure.value)) return process.exit(1)
      return fail(failure.value.message, exitCodeFor(failure.value))
    }
    process.stderr.write(`netjail: internal error, please report it:\n${Cause.pretty(exit.cause)}\n`)
    process.exit(125)
  })
}

main()
