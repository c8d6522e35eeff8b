/**
 * The `netjail` command: @effect/cli declares and documents the options and
 * handles --help and --version; the argv pre-pass has already taken the
 * network options (in order) and the sandboxed command.
 */
import { Command, Options } from "@effect/cli"
import { Duration, Effect, Option } from "effect"
import type { Invocation } from "../domain/Config.js"
import { makeConfig } from "../domain/Config.js"
import * as Errors from "../domain/errors.js"
import { checkConfig } from "../domain/validate.js"
import type { ParsedArgv } from "./argv.js"

const doc = (name: string, description: string) =>
  Options.text(name).pipe(Options.repeated, Options.withDescription(description))

/** Declared so --help lists them; their values reach netjail through the argv pre-pass. */
const networkOptions = {
  net: doc("net", "<device>|none: wire eth0..eth3 to a bridge (veth pair) or an ethernet device (macvlan); none: only lo"),
  ip: doc("ip", "<addr>|none: the sandbox address on the last --net (default: a free one, ARP-probed)"),
  iprange: doc("iprange", "<start>,<end>: choose the automatic address in this range"),
  netmask: doc("netmask", "<mask>: the subnet mask, for a device that has no IPv4 address"),
  mac: doc("mac", "<xx:xx:xx:xx:xx:xx>: the sandbox interface's MAC address"),
  mtu: doc("mtu", "<576..9198>: the sandbox interface's MTU"),
  vethName: doc("veth-name", "<name>: the host end of the veth pair (at most 15 bytes)"),
  ipvlan: Options.boolean("ipvlan").pipe(Options.withDescription("use ipvlan (L2) rather than macvlan on the last --net")),
  defaultgw: doc("defaultgw", "<addr>: the sandbox's default gateway (default: the first bridge's address)")
}

const globalOptions = {
  quiet: Options.boolean("quiet").pipe(Options.withDescription("print nothing but errors")),
  json: Options.boolean("json").pipe(Options.withDescription("print the setup summary as one JSON object on stderr")),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("check everything and choose the addresses, create nothing")
  ),
  asRoot: Options.boolean("as-root").pipe(
    Options.withDescription("under sudo, run the command as root rather than as the calling user")
  ),
  arpProbes: Options.integer("arp-probes").pipe(
    Options.withDefault(2),
    Options.withDescription("ARP probes per candidate address (1..30)")
  ),
  arpTimeout: Options.integer("arp-timeout").pipe(
    Options.withDefault(500),
    Options.withDescription("milliseconds each ARP probe window lasts")
  ),
  lockTimeout: Options.text("lock-timeout").pipe(
    Options.optional,
    Options.withDescription("give up waiting for the host lock after this long (e.g. 500ms, 10s, 2m); default: wait")
  )
}

export type GlobalOptions = {
  readonly quiet: boolean
  readonly json: boolean
  readonly dryRun: boolean
  readonly asRoot: boolean
  readonly arpProbes: number
  readonly arpTimeout: number
  readonly lockTimeout: Option.Option<string>
}

/** 500ms, 10s, 2m, or a bare number of seconds. */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (!match) return Option.none()
  const value = Number(match[1])
  return Option.some(
    match[2] === "ms" ? Duration.millis(value) : match[2] === "m" ? Duration.minutes(value) : Duration.seconds(value)
  )
}

/** The whole invocation, checked: everything a person can get wrong is caught here, before anything is touched. */
export const invocationOf = (argv: ParsedArgv, options: GlobalOptions) =>
  Effect.gen(function*() {
    if (options.arpProbes < 1 || options.arpProbes > 30) {
      return yield* new Errors.InvalidOption({ option: "--arp-probes", reason: "expects 1..30" })
    }
    if (options.arpTimeout < 1 || options.arpTimeout > 60_000) {
      return yield* new Errors.InvalidOption({ option: "--arp-timeout", reason: "expects 1..60000 milliseconds" })
    }
    const lockTimeout = Option.isSome(options.lockTimeout) ? parseDuration(options.lockTimeout.value) : Option.none()
    if (Option.isSome(options.lockTimeout) && Option.isNone(lockTimeout)) {
      return yield* new Errors.InvalidOption({ option: "--lock-timeout", reason: "expects a duration such as 500ms, 10s or 2m" })
    }
    const sandbox = yield* checkConfig(makeConfig({
      interfaces: [],
      probe: { probes: options.arpProbes, window: options.arpTimeout },
      ...(Option.isSome(lockTimeout) ? { lockTimeout: Duration.toMillis(lockTimeout.value) } : {})
    }))
    const withNetwork = {
      ...sandbox,
      interfaces: argv.interfaces,
      ...(argv.defaultGateway === undefined ? {} : { defaultGateway: argv.defaultGateway })
    }
    const command = argv.command.length > 0 ? argv.command : [process.env.SHELL || "/bin/sh"]
    return {
      sandbox: yield* checkConfig(withNetwork),
      command,
      output: options.json ? "json" : options.quiet ? "quiet" : "table",
      dryRun: options.dryRun,
      asRoot: options.asRoot
    } satisfies Invocation
  })

export const rootCommand = <E, R>(handler: (options: GlobalOptions) => Effect.Effect<void, E, R>) =>
  Command.make("netjail", { ...globalOptions, ...networkOptions }, (all) => handler(all)).pipe(
    Command.withDescription(
      "Run a command in its own network namespace, wired to the host's networks: netjail [options] [-- command [args...]]"
    )
  )
