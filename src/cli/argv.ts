/**
 * The firejail-syntax pre-pass over argv. @effect/cli loses the order of
 * repeated options, yet in firejail every per-interface option binds to the
 * last `--net`; so this pure pass reads the network options in order, finds
 * where the sandboxed command starts, and leaves the rest to @effect/cli.
 */
import { Either, Option } from "effect"
import type { AddressMode, InterfaceRequest, IpRange } from "../domain/Config.js"
import * as Errors from "../domain/errors.js"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Mac from "../domain/Mac.js"

/** Options bound to the last `--net`. */
const perInterface = new Set(["--ip", "--iprange", "--netmask", "--mac", "--mtu", "--veth-name", "--ipvlan"])
/** Options that take a value, so `--opt value` consumes the next argument. */
const takesValue = new Set([
  "--net",
  "--ip",
  "--iprange",
  "--netmask",
  "--mac",
  "--mtu",
  "--veth-name",
  "--defaultgw",
  "--arp-probes",
  "--arp-timeout",
  "--lock-timeout",
  "--log-level"
])
/** Options @effect/cli handles; anything else is refused here with a plain message. */
const global = new Set([
  "--quiet",
  "--json",
  "--dry-run",
  "--as-root",
  "--arp-probes",
  "--arp-timeout",
  "--lock-timeout",
  "--help",
  "-h",
  "--version",
  "--log-level",
  "--completions",
  "--wizard"
])
/** Words that name a subcommand when they come first, not a program to run. */
export const subcommands = new Set(["demo", "list"])

type Draft = {
  -readonly [K in keyof InterfaceRequest]: InterfaceRequest[K]
}

export interface ParsedArgv {
  readonly interfaces: ReadonlyArray<InterfaceRequest>
  readonly netNone: boolean
  readonly defaultGateway: Ipv4.Ipv4 | undefined
  /** What @effect/cli parses: the global options and any subcommand, `--opt value` form. */
  readonly cliArgs: ReadonlyArray<string>
  /** The sandboxed command and its arguments, untouched. */
  readonly command: ReadonlyArray<string>
}

const parseIp = (value: string): Either.Either<Ipv4.Ipv4, Errors.ConfigError> =>
  Option.match(Ipv4.parse(value), {
    onNone: () => Either.left(new Errors.InvalidIpAddress({ value })),
    onSome: Either.right
  })

const parseRange = (value: string): Either.Either<IpRange, Errors.ConfigError> => {
  const [start, end, ...extra] = value.split(",")
  const a = Ipv4.parse(start ?? "")
  const b = Ipv4.parse(end ?? "")
  if (extra.length > 0 || Option.isNone(a) || Option.isNone(b) || a.value >= b.value) {
    return Either.left(new Errors.InvalidIpRange({ value }))
  }
  return Either.right({ start: a.value, end: b.value })
}

const parseMtu = (value: string): Either.Either<number, Errors.ConfigError> =>
  /^\d{1,5}$/.test(value) ? Either.right(Number(value)) : Either.left(new Errors.InvalidMtu({ value }))

/** Applies one per-interface option to the interface being described. */
const bind = (draft: Draft, option: string, value: string): Either.Either<void, Errors.ConfigError> => {
  const once = (set: boolean, what: Errors.ConfiguredTwice["what"]): Either.Either<void, Errors.ConfigError> =>
    set ? Either.left(new Errors.ConfiguredTwice({ what })) : Either.void
  switch (option) {
    case "--ip":
      return Either.flatMap(once(draft.address._tag !== "Auto", "IP address"), () => {
        if (value === "none") return Either.right(void (draft.address = { _tag: "None" }))
        if (value === "dhcp") {
          return Either.left(new Errors.InvalidOption({ option: "--ip", reason: "dhcp is not supported" }))
        }
        return Either.map(parseIp(value), (address) => void (draft.address = { _tag: "Static", address } as AddressMode))
      })
    case "--iprange":
      return Either.flatMap(once(draft.iprange !== undefined, "IP range"), () =>
        Either.map(parseRange(value), (range) => void (draft.iprange = range)))
    case "--netmask":
      return Either.flatMap(once(draft.netmask !== undefined, "network mask"), () =>
        Option.match(Ipv4.parse(value), {
          onNone: () => Either.left(new Errors.InvalidNetmask({ value })),
          onSome: (mask) => Either.right(void (draft.netmask = mask))
        }))
    case "--mac":
      return Either.flatMap(once(draft.mac !== undefined, "MAC address"), () =>
        Option.match(Mac.parse(value), {
          onNone: () => Either.left(new Errors.InvalidMacAddress({ value, multicast: false })),
          // firejail takes the all-zero address to mean "unset"
          onSome: (mac) => Either.right(void (Mac.isZero(mac) ? undefined : (draft.mac = mac)))
        }))
    case "--mtu":
      return Either.flatMap(once(draft.mtu !== undefined, "MTU"), () =>
        Either.map(parseMtu(value), (mtu) => void (draft.mtu = mtu)))
    case "--veth-name":
      return Either.flatMap(once(draft.vethName !== undefined, "veth name"), () =>
        Either.right(void (draft.vethName = value)))
    default: // --ipvlan
      return Either.right(void (draft.ipvlan = true))
  }
}

/** Splits `--opt=value` and `--opt value` alike; returns the option, its value, and how many args it used. */
const readOption = (args: ReadonlyArray<string>, i: number) => {
  const arg = args[i]!
  const eq = arg.indexOf("=")
  if (eq > 0) return { option: arg.slice(0, eq), value: arg.slice(eq + 1) as string | undefined, used: 1 }
  if (takesValue.has(arg)) return { option: arg, value: args[i + 1], used: 2 }
  return { option: arg, value: undefined, used: 1 }
}

export const parseArgv = (args: ReadonlyArray<string>): Either.Either<ParsedArgv, Errors.ConfigError> => {
  const drafts: Array<Draft> = []
  const cliArgs: Array<string> = []
  let netNone = false
  let defaultGateway: Ipv4.Ipv4 | undefined
  let i = 0
  while (i < args.length) {
    const arg = args[i]!
    if (arg === "--") {
      i++
      break
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (cliArgs.length === 0 && drafts.length === 0 && !netNone && subcommands.has(arg)) {
        // a subcommand owns everything after it
        cliArgs.push(...args.slice(i))
        i = args.length
      }
      break
    }
    const { option, used, value } = readOption(args, i)
    i += used
    if (takesValue.has(option) && value === undefined) {
      return Either.left(new Errors.InvalidOption({ option, reason: "expects a value" }))
    }
    if (option === "--net") {
      if (value === "none") {
        if (drafts.length > 0) return Either.left(new Errors.NetNoneExclusive())
        netNone = true
        continue
      }
      if (netNone) return Either.left(new Errors.NetNoneExclusive())
      if (value === "lo") return Either.left(new Errors.LoopbackDevice())
      if (value === "" || value === undefined) {
        return Either.left(new Errors.InvalidOption({ option, reason: "expects a device name" }))
      }
      if (drafts.length === 4) return Either.left(new Errors.TooManyDevices())
      drafts.push({ device: value, address: { _tag: "Auto" }, ipvlan: false })
    } else if (perInterface.has(option)) {
      const current = drafts.at(-1)
      if (current === undefined) return Either.left(new Errors.NoNetworkDevice({ option }))
      const bound = bind(current, option, value ?? "")
      if (Either.isLeft(bound)) return Either.left(bound.left)
    } else if (option === "--defaultgw") {
      const gateway = parseIp(value!)
      if (Either.isLeft(gateway)) return Either.left(gateway.left)
      defaultGateway = gateway.right
    } else if (!global.has(option)) {
      return Either.left(new Errors.InvalidOption({ option, reason: "unknown option (see netjail --help)" }))
    } else {
      cliArgs.push(option)
      if (value !== undefined) cliArgs.push(value)
    }
  }
  if (defaultGateway !== undefined && drafts.length === 0) {
    return Either.left(new Errors.DefaultGatewayWithoutNetwork())
  }
  return Either.right({
    interfaces: drafts,
    netNone,
    defaultGateway,
    cliArgs,
    command: args.slice(i)
  })
}
