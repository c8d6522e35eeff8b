import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { parseArgv } from "../../src/cli/argv.js"
import * as Errors from "../../src/domain/errors.js"

const right = (args: Array<string>) => Either.getOrThrow(parseArgv(args))
const left = (args: Array<string>) => Either.flip(parseArgv(args)).pipe(Either.getOrThrow)

/** One option with its value, to be written in either firejail form. */
const perInterface = fc.constantFrom(
  ["--ip", "10.10.20.7"],
  ["--iprange", "10.10.20.10,10.10.20.20"],
  ["--mac", "00:11:22:33:44:55"],
  ["--mtu", "1400"],
  ["--veth-name", "vtest"],
  ["--netmask", "255.255.255.0"]
)
const device = fc.constantFrom("br0", "br1", "eth0", "enp5s0")
const groups = fc.array(
  fc.tuple(device, fc.uniqueArray(perInterface, { selector: (o) => o[0], maxLength: 4 })),
  { minLength: 1, maxLength: 4 }
)
const render = (option: Array<string>, joined: boolean) => (joined ? [`${option[0]}=${option[1]}`] : option)

describe("the argv pre-pass", () => {
  it.prop("--opt=value and --opt value give the same configuration", [groups, fc.infiniteStream(fc.boolean())], ([gs, forms]) => {
    const build = (pick: () => boolean) =>
      gs.flatMap(([dev, options]) => [...render(["--net", dev], pick()), ...options.flatMap((o) => render(o, pick()))])
    const joined = right(build(() => true))
    const mixed = right(build(() => forms.next().value))
    expect(mixed).toEqual(joined)
  })

  it.prop("per-interface options bind to the preceding --net", [groups], ([gs]) => {
    const parsed = right(gs.flatMap(([dev, options]) => [`--net=${dev}`, ...options.map((o) => `${o[0]}=${o[1]}`)]))
    expect(parsed.interfaces.map((i) => i.device)).toEqual(gs.map(([dev]) => dev))
    gs.forEach(([, options], i) => {
      const bound = parsed.interfaces[i]!
      const names = options.map((o) => o[0])
      expect(bound.address._tag === "Static").toBe(names.includes("--ip"))
      expect(bound.mtu !== undefined).toBe(names.includes("--mtu"))
      expect(bound.vethName !== undefined).toBe(names.includes("--veth-name"))
      expect(bound.iprange !== undefined).toBe(names.includes("--iprange"))
    })
  })

  it.prop("everything after -- reaches the command untouched", [fc.array(fc.string())], ([rest]) => {
    const parsed = right(["--net=br0", "--quiet", "--", ...rest])
    expect(parsed.command).toEqual(rest)
    expect(parsed.cliArgs).toEqual(["--quiet"])
  })

  it("the command starts at the first argument that is not an option", () => {
    const parsed = right(["--net", "br0", "--ip", "10.0.0.2", "sh", "-c", "echo --net=x"])
    expect(parsed.command).toEqual(["sh", "-c", "echo --net=x"])
    expect(parsed.interfaces).toHaveLength(1)
  })

  it("hands global options to @effect/cli in --opt value form", () => {
    expect(right(["--arp-probes=3", "--lock-timeout", "2s", "--json", "--", "true"]).cliArgs)
      .toEqual(["--arp-probes", "3", "--lock-timeout", "2s", "--json"])
  })

  it("leaves a leading subcommand to @effect/cli", () => {
    expect(right(["demo"]).cliArgs).toEqual(["demo"])
    expect(right(["--", "demo"]).command).toEqual(["demo"])
  })

  const cases: Array<[Array<string>, string, string]> = [
    [["--net=lo"], "LoopbackDevice", "cannot attach to lo device"],
    [["--net=a", "--net=b", "--net=c", "--net=d", "--net=e"], "TooManyDevices", "maximum 4 network devices are allowed"],
    [["--ip=10.0.0.2"], "NoNetworkDevice", "no network device configured"],
    [["--mtu", "1400"], "NoNetworkDevice", "no network device configured"],
    [["--net=br0", "--ip=10.0.0.300"], "InvalidIpAddress", "invalid IP address"],
    [["--net=br0", "--ip=10.0.0.2", "--ip=10.0.0.3"], "ConfiguredTwice", "cannot configure the IP address twice for the same interface"],
    [["--net=br0", "--ip=none", "--ip=10.0.0.3"], "ConfiguredTwice", "cannot configure the IP address twice for the same interface"],
    [["--net=br0", "--netmask=255.0.0.0", "--netmask=255.0.0.0"], "ConfiguredTwice", "cannot configure the network mask twice for the same interface"],
    [["--net=br0", "--mac=00:11:22:33:44:55", "--mac=00:11:22:33:44:56"], "ConfiguredTwice", "cannot configure the MAC address twice for the same interface"],
    [["--net=br0", "--iprange=10.0.0.2,10.0.0.9", "--iprange=10.0.0.2,10.0.0.9"], "ConfiguredTwice", "cannot configure the IP range twice for the same interface"],
    [["--net=br0", "--mtu=abc"], "InvalidMtu", "invalid mtu value"],
    [["--net=br0", "--mac=00:11:22:33:44"], "InvalidMacAddress", "invalid MAC address"],
    [["--net=br0", "--iprange=10.0.0.9,10.0.0.2"], "InvalidIpRange", "invalid IP range"],
    [["--net=br0", "--iprange=10.0.0.9"], "InvalidIpRange", "invalid IP range"],
    [["--net=br0", "--netmask=255.255.0"], "InvalidNetmask", "invalid network mask"],
    [["--defaultgw=10.0.0.1"], "DefaultGatewayWithoutNetwork", "option --defaultgw requires at least one network or one interface to be configured"],
    [["--net=none", "--net=br0"], "NetNoneExclusive", "--net and --net=none are mutually exclusive"],
    [["--net=br0", "--net=none"], "NetNoneExclusive", "--net and --net=none are mutually exclusive"],
    [["--net"], "InvalidOption", "--net: expects a value"]
  ]
  for (const [args, tag, message] of cases) {
    it(`${args.join(" ")} → ${message}`, () => {
      const error = left(args)
      expect(error._tag).toBe(tag)
      expect(error.message).toContain(message)
      expect(Errors.exitCodeFor(error)).toBe(1)
    })
  }

  it("takes an all-zero --mac as unset, as firejail does", () => {
    expect(right(["--net=br0", "--mac=00:00:00:00:00:00"]).interfaces[0]!.mac).toBeUndefined()
  })
})

describe("unknown options", () => {
  it("are refused with one plain message", () => {
    const error = Either.flip(parseArgv(["--bogus", "--", "true"])).pipe(Either.getOrThrow)
    expect(error.message).toBe("--bogus: unknown option (see netjail --help)")
  })
})

import { callerIds } from "../../src/cli/run.js"

describe("under sudo", () => {
  it("the command runs as the calling user unless --as-root", () => {
    const env = { SUDO_UID: "1000", SUDO_GID: "1001" }
    const asRoot = process.getuid?.() === 0
    expect(callerIds(false, env)).toEqual(asRoot ? { uid: 1000, gid: 1001 } : {})
    expect(callerIds(true, env)).toEqual({})
    expect(callerIds(false, {})).toEqual({})
    expect(callerIds(false, { SUDO_UID: "x", SUDO_GID: "1" })).toEqual({})
  })
})
