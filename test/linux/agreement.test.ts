/**
 * The simulated layer against the kernel for `--net=<bridge>` (veth wiring):
 * each scenario runs once on a lab namespace with real bridges and peers (Linux
 * layer, real clock) and once on a simulated world that mirrors the lab
 * (simulated layer, TestClock). Both runs are reduced to the same outcome class;
 * the kernel's must be the stated expectation and the simulation's must equal it.
 *
 * The lab per scenario: namespace njt-<random> holding the bridges below; a
 * peer is a namespace `<lab>-<id>` whose single interface (a veth port of a
 * bridge) holds one or more addresses, answering ARP for each of them. The sim
 * world has the same bridges as devices and a host per peer address on the
 * bridge's segment. Every namespace is deleted with the test's scope, also
 * when it fails; nothing here touches the root namespace's interfaces.
 *
 * Not covered here: a peer that answers only the second probe (sim `drops: 1`)
 * has no simple kernel counterpart; the property tests cover it.
 */
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, readlinkSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Option, Ref, TestServices } from "effect"
import {
  Arp,
  Ipv4,
  layerLinux,
  makeConfig,
  Namespaces,
  type RunningSandbox,
  Sandbox,
  type SandboxConfig,
  Subnet
} from "netjail"
import { isClean, layerSim, leftovers, SimWorld, type World, type WorldSpec } from "netjail/testing"
import { settle } from "../property/clock.js"
import { describeKernel, type Lab, lab } from "./lab.js"

/** Two probes of 100 ms: a run costs about 0.2 s of probing per batch. */
const PROBE = { probes: 2, window: 100 } as const

// ---- the lab: the same bridges in every scenario --------------------------------------------

interface BridgeSpec {
  readonly name: string
  /** The bridge's own address; none for a bridge without IPv4. */
  readonly cidr?: string
  /** Further addresses of the bridge, which the sandbox must not take either. */
  readonly secondary?: ReadonlyArray<string>
  /** Explicit and distinct, so no bridge falls back to 00:00:.. and none shares another's. */
  readonly mac: string
}

const BRIDGES: ReadonlyArray<BridgeSpec> = [
  { name: "br0", cidr: "10.10.20.1/24", secondary: ["10.10.20.254/24"], mac: "02:00:00:00:00:01" },
  { name: "br1", cidr: "10.10.30.1/24", mac: "02:00:00:00:00:02" },
  /** The crowded one: 30 host addresses, the bridge's and 27 held by one peer leave 2. */
  { name: "br27", cidr: "10.10.40.1/27", mac: "02:00:00:00:00:03" },
  { name: "br31", cidr: "10.10.50.0/31", mac: "02:00:00:00:00:04" },
  { name: "brn", mac: "02:00:00:00:00:05" }
]

const bridgeCidr = (name: string): Subnet.Cidr | undefined => {
  const text = BRIDGES.find((b) => b.name === name)?.cidr
  return text === undefined ? undefined : Option.getOrThrow(Subnet.parse(text))
}

/** One peer namespace: a single interface on `bridge` holding every address of the list. */
interface PeerSpec {
  readonly bridge: string
  readonly addresses: ReadonlyArray<string>
}

/** br0's neighbours in every scenario: two hosts, each in its own namespace. */
const BR0_PEERS: ReadonlyArray<PeerSpec> = [
  { bridge: "br0", addresses: ["10.10.20.2"] },
  { bridge: "br0", addresses: ["10.10.20.3"] }
]

const range = (prefix: string, from: number, to: number, except: ReadonlyArray<number> = []): Array<string> =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i).filter((n) => !except.includes(n)).map((n) => `${prefix}.${n}`)

/** br27's host addresses .2-.30 less these two, all held by one peer. */
const CROWDED_FREE = [17, 29] as const

// ---- scenarios ------------------------------------------------------------------------------

interface Scenario {
  readonly name: string
  /** Peers beyond BR0_PEERS. */
  readonly extraPeers?: ReadonlyArray<PeerSpec>
  /** The `--net` requests; one plain `--net=br0` when unset. */
  readonly interfaces?: ReadonlyArray<Record<string, unknown>>
  readonly defaultGateway?: string
  /** The subnet a bridge without IPv4 gets from --netmask (classifies its automatic address). */
  readonly inferredSubnet?: string
  /** What the kernel gives (see `outcome`), and the simulation must give too. */
  readonly expected: Record<string, unknown>
}

const peersOf = (scenario: Scenario): ReadonlyArray<PeerSpec> => [...BR0_PEERS, ...(scenario.extraPeers ?? [])]
const requestsOf = (scenario: Scenario): ReadonlyArray<Record<string, unknown>> =>
  scenario.interfaces ?? [{ device: "br0" }]

const configFor = (scenario: Scenario): SandboxConfig =>
  makeConfig({
    interfaces: requestsOf(scenario).map((request) => ({ device: "br0", ...request })),
    probe: PROBE,
    ...(scenario.defaultGateway === undefined ? {} : { defaultGateway: scenario.defaultGateway })
  })

const eth = (fields: Record<string, unknown> = {}) => ({
  name: "eth0",
  device: "br0",
  wiring: "veth",
  hostEnd: true,
  address: "free",
  prefix: 24,
  mtu: 1500,
  ...fields
})

const success = (
  interfaces: ReadonlyArray<Record<string, unknown>> = [eth()],
  fields: Record<string, unknown> = {}
) => ({ interfaces, gateway: "10.10.20.1", warnings: 0, ...fields })

const staticAt = (address: string) => ({ address: { _tag: "Static", address } })

const scenarios: ReadonlyArray<Scenario> = [
  { name: "auto on a quiet /24", expected: success() },
  {
    name: "auto in an --iprange whose only free address is .4",
    extraPeers: [{ bridge: "br0", addresses: ["10.10.20.5", "10.10.20.6"] }],
    interfaces: [{ iprange: { start: "10.10.20.2", end: "10.10.20.6" } }],
    expected: success([eth({ address: "10.10.20.4" })])
  },
  {
    name: "auto in an --iprange the peers hold entirely",
    extraPeers: [{ bridge: "br0", addresses: ["10.10.20.4", "10.10.20.5", "10.10.20.6"] }],
    interfaces: [{ iprange: { start: "10.10.20.2", end: "10.10.20.6" } }],
    expected: { failure: "NoFreeAddress" }
  },
  {
    name: "auto on a crowded /27 where one peer holds all but two addresses",
    extraPeers: [{ bridge: "br27", addresses: range("10.10.40", 2, 30, CROWDED_FREE) }],
    interfaces: [{ device: "br27" }],
    expected: success([eth({ device: "br27", prefix: 27 })], { gateway: "10.10.40.1" })
  },
  { name: "a free static address", interfaces: [staticAt("10.10.20.77")], expected: success([eth({ address: "10.10.20.77" })]) },
  { name: "a peer's static address", interfaces: [staticAt("10.10.20.2")], expected: { failure: "AddressInUse" } },
  {
    name: "a static address held by a multi-address peer",
    extraPeers: [{ bridge: "br0", addresses: ["10.10.20.40", "10.10.20.41"] }],
    interfaces: [staticAt("10.10.20.41")],
    expected: { failure: "AddressInUse" }
  },
  { name: "the bridge's own static address", interfaces: [staticAt("10.10.20.1")], expected: { failure: "AddressIsInterface" } },
  {
    name: "the bridge's secondary address as static address",
    interfaces: [staticAt("10.10.20.254")],
    expected: { failure: "AddressIsInterface" }
  },
  {
    name: "an --iprange outside the subnet",
    interfaces: [{ iprange: { start: "10.10.99.2", end: "10.10.99.9" } }],
    expected: { failure: "IpRangeOutsideSubnet" }
  },
  {
    name: "the --defaultgw address as static address",
    interfaces: [staticAt("10.10.20.5")],
    defaultGateway: "10.10.20.5",
    expected: { failure: "AddressIsGateway" }
  },
  { name: "a static address outside the subnet", interfaces: [staticAt("10.10.99.5")], expected: { failure: "AddressOutsideSubnet" } },
  { name: "the broadcast address", interfaces: [staticAt("10.10.20.255")], expected: { failure: "NetworkAddress" } },
  { name: "the network address", interfaces: [staticAt("10.10.20.0")], expected: { failure: "NetworkAddress" } },
  { name: "--defaultgw inside the subnet", defaultGateway: "10.10.20.5", expected: success([eth()], { gateway: "10.10.20.5" }) },
  { name: "--defaultgw outside the subnet", defaultGateway: "10.10.99.1", expected: { failure: "GatewayOutOfRange" } },
  {
    name: "--ip=none",
    interfaces: [{ address: { _tag: "None" } }],
    expected: success([eth({ address: "none", prefix: undefined })], { gateway: null })
  },
  { name: "a device that does not exist", interfaces: [{ device: "nosuch0" }], expected: { failure: "DeviceNotFound" } },
  { name: "a /31 bridge", interfaces: [{ device: "br31" }], expected: { failure: "SubnetTooSmall" } },
  {
    name: "--mtu and --mac",
    interfaces: [{ mtu: 1400, mac: "02:11:22:33:44:55" }],
    expected: success([eth({ mtu: 1400, mac: "02:11:22:33:44:55" })])
  },
  {
    name: "two bridges: each interface in its subnet, the gateway from the first",
    interfaces: [{ device: "br0" }, { device: "br1" }],
    expected: success([eth(), eth({ name: "eth1", device: "br1" })])
  },
  {
    name: "a bridge without IPv4 and no --ip",
    interfaces: [{ device: "brn" }],
    expected: success([eth({ device: "brn", address: "none", prefix: undefined })], { gateway: null, warnings: 1 })
  },
  {
    name: "a bridge without IPv4 with --ip and --netmask",
    interfaces: [{ device: "brn", ...staticAt("10.10.60.5"), netmask: "255.255.255.0" }],
    expected: success([eth({ device: "brn", address: "10.10.60.5" })], { gateway: null })
  },
  {
    name: "a bridge without IPv4 with --netmask and --defaultgw: an automatic address in the inferred subnet",
    interfaces: [{ device: "brn", netmask: "255.255.255.0" }],
    defaultGateway: "10.10.60.1",
    inferredSubnet: "10.10.60.0/24",
    expected: success([eth({ device: "brn" })], { gateway: "10.10.60.1" })
  }
]

// ---- the outcome class ----------------------------------------------------------------------

/**
 * The failure's tag, or per interface its name, device, wiring, whether it has
 * a host end, its address classified, prefix, MTU and (when asked for) MAC; the
 * gateway and the number of warnings. The address is `none`; the address itself
 * where the request fixes it (static, or an --iprange); `free` when it is a host
 * address of the bridge's subnet held by no bridge, peer or the gateway; else
 * `taken <ip>` or `outside <ip>`, which no expectation names.
 */
const outcome = (scenario: Scenario, exit: Exit.Exit<RunningSandbox, unknown>): Record<string, unknown> => {
  if (Exit.isFailure(exit)) {
    const tag = Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e: any) => e?._tag as string))
    return { failure: tag ?? Cause.pretty(exit.cause) }
  }
  const sandbox = exit.value
  const gateway = Option.getOrNull(Option.map(sandbox.gateway, Ipv4.format))
  const taken = new Set<string>([
    ...BRIDGES.flatMap((b) => [...(b.cidr === undefined ? [] : [b.cidr]), ...(b.secondary ?? [])].map((c) => c.split("/")[0]!)),
    ...peersOf(scenario).flatMap((p) => p.addresses),
    ...(gateway === null ? [] : [gateway])
  ])
  const requests = requestsOf(scenario)
  return {
    interfaces: sandbox.interfaces.map((i, slot) => {
      const request = requests[slot] ?? {}
      const address = Option.getOrUndefined(i.address)
      const ip = address === undefined ? undefined : Ipv4.format(address.address)
      const fixed = (request.address as any)?._tag === "Static" || request.iprange !== undefined
      const subnet = bridgeCidr(i.device) ??
        (scenario.inferredSubnet === undefined ? undefined : Option.getOrThrow(Subnet.parse(scenario.inferredSubnet)))
      const classified = ip === undefined
        ? "none"
        : taken.has(ip)
        ? `taken ${ip}`
        : fixed
        ? ip
        : subnet !== undefined && Subnet.isHost(subnet, address!.address)
        ? "free"
        : `outside ${ip}`
      return {
        name: i.name,
        device: i.device,
        wiring: i.wiring,
        hostEnd: Option.isSome(i.hostName),
        address: classified,
        prefix: address?.prefix,
        mtu: i.mtu,
        ...(request.mac === undefined ? {} : { mac: i.mac })
      }
    }),
    gateway,
    warnings: sandbox.warnings.length
  }
}

/** What the classes leave out but both layers must still agree on: the error's message, the warnings' text. */
const details = (exit: Exit.Exit<RunningSandbox, unknown>) =>
  Exit.match(exit, {
    onFailure: (cause) => ({ message: Option.getOrUndefined(Option.map(Cause.failureOption(cause), (e: any) => String(e?.message))) }),
    onSuccess: (sandbox) => ({ warnings: sandbox.warnings })
  })

// ---- what the sandbox holds while it runs, as each layer's own state shows it ----------------

/** Per sandbox interface: its state in the namespace and the bridge its host end is a port of. */
interface View {
  readonly interfaces: ReadonlyArray<{
    readonly name: string
    readonly up: boolean
    readonly mtu: number
    readonly mac: string
    readonly inet: ReadonlyArray<string>
    readonly master: string | null
  }>
  readonly gateway: string | null
}

/** The view the pipeline's report implies: addresses configured, host ends enslaved, the route when reachable. */
const reported = (sandbox: RunningSandbox): View => {
  const addresses = sandbox.interfaces.flatMap((i) => Option.toArray(i.address))
  const gateway = Option.filter(sandbox.gateway, (g) => addresses.some((a) => Subnet.contains(a, g)))
  return {
    interfaces: sandbox.interfaces.map((i) => ({
      name: i.name,
      up: true,
      mtu: i.mtu,
      mac: i.mac,
      inet: Option.toArray(Option.map(i.address, Subnet.format)),
      master: i.device
    })),
    gateway: Option.getOrNull(Option.map(gateway, Ipv4.format))
  }
}

/** The kernel's view: iproute2 inside the sandbox (through a process spawned there) and in the lab. */
const kernelView = (l: Lab, sandbox: RunningSandbox) =>
  Effect.gen(function*() {
    const child = yield* (yield* Namespaces).spawn(sandbox.namespace, { command: "sleep", args: ["100"] })
    const net = `/proc/${child.pid}/ns/net`
    const json = (...args: ReadonlyArray<string>) =>
      JSON.parse(execFileSync("nsenter", [`--net=${net}`, "ip", "-json", ...args], { encoding: "utf8", stdio: "pipe" }))
    const links = (json("addr", "show") as Array<any>).filter((link) => link.ifname !== "lo")
    const [route] = json("route", "show", "default") as Array<{ gateway?: string }>
    const hostEnds = new Map<string, string | null>(
      sandbox.interfaces.flatMap((i) =>
        Option.toArray(Option.map(i.hostName, (name) => [i.name, l.json("link", "show", name)[0]?.master ?? null] as const))
      )
    )
    return {
      interfaces: links.map((link) => ({
        name: link.ifname as string,
        up: (link.flags as Array<string>).includes("UP"),
        mtu: link.mtu as number,
        mac: link.address as string,
        inet: (link.addr_info as Array<any>).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
        master: hostEnds.get(link.ifname) ?? null
      })),
      gateway: route?.gateway ?? null
    } satisfies View
  })

/** The simulated world's view of the same. */
const simView = (w: World, sandbox: RunningSandbox): View => ({
  interfaces: w.links
    .filter((link) => link.namespace === sandbox.namespace.id && link.kind !== "loopback")
    .map((link) => {
      const hostEnd = w.links.find((l) => l.index === link.peer)
      return {
        name: link.name,
        up: link.up,
        mtu: link.mtu,
        mac: link.mac,
        inet: link.addresses.map(Subnet.format),
        master: w.links.find((l) => l.index === hostEnd?.master)?.name ?? null
      }
    }),
  gateway: Option.getOrNull(Option.map(
    Option.fromNullable(w.routes.find((r) => r.namespace === sandbox.namespace.id)),
    (r) => Ipv4.format(r.gateway)
  ))
})

// ---- running the pipeline on each layer -----------------------------------------------------

const ipIn = (namespace: string, ...args: ReadonlyArray<string>): string =>
  execFileSync("ip", ["-n", namespace, ...args], { encoding: "utf8", stdio: "pipe" })

/** The lab for one scenario: the bridges, then each peer with all its addresses on its one interface. */
const labFor = (scenario: Scenario) =>
  Effect.gen(function*() {
    const l = yield* lab
    return yield* Effect.sync(() => {
      for (const b of BRIDGES) {
        l.bridge(b.name, b.cidr, b.mac)
        for (const cidr of b.secondary ?? []) l.ip("addr", "add", cidr, "dev", b.name)
      }
      peersOf(scenario).forEach((peer, i) => {
        const prefix = bridgeCidr(peer.bridge)!.prefix
        const id = `q${i}`
        const [first, ...rest] = peer.addresses
        // lab.peer registers the namespace for deletion before it adds anything to it
        l.peer(peer.bridge, id, `${first}/${prefix}`)
        if (rest.length > 0) {
          execFileSync("ip", ["-n", `${l.name}-${id}`, "-batch", "-"], {
            input: rest.map((address) => `addr add ${address}/${prefix} dev eth0\n`).join(""),
            stdio: ["pipe", "pipe", "pipe"]
          })
        }
      })
      return l
    })
  })

/** The addresses each peer namespace holds, as the kernel lists them. */
const peerAddresses = (l: Lab): Array<Array<string>> =>
  l.peers.map((ns) =>
    (JSON.parse(ipIn(ns, "-json", "addr", "show", "dev", "eth0")) as Array<any>)[0].addr_info
      .filter((a: any) => a.family === "inet")
      .map((a: any) => a.local as string)
  )

const filesUnder = (directory: string): Array<string> =>
  existsSync(directory)
    ? readdirSync(directory, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => e.name)
    : []

/** Each peer's links: the veth end (eth0) and lo, as before the run. */
const peerLinks = (l: Lab): Array<string> =>
  l.peers.map((ns) => (JSON.parse(ipIn(ns, "-json", "link", "show")) as Array<any>).map((x) => x.ifname).sort().join(","))

/** The pipeline in-process on the lab's bridges (real clock); afterwards the lab is as it was. */
const runOnKernel = (l: Lab, config: SandboxConfig) =>
  Effect.gen(function*() {
    const before = { links: l.linkNames(), peers: peerLinks(l), own: readlinkSync("/proc/self/ns/net") }
    // the host lock and the lease registry of this lab, not the host's /run/netjail
    const runDirectory = join(tmpdir(), l.name)
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(runDirectory, { force: true, recursive: true })))
    const exit = yield* Effect.gen(function*() {
      const sandbox = yield* Sandbox.run(config)
      expect(yield* kernelView(l, sandbox), "the kernel holds what the pipeline reported").toEqual(reported(sandbox))
      return sandbox
    }).pipe(
      Effect.scoped,
      Effect.provide(layerLinux({ hostNamespace: l.path, runDirectory })),
      Effect.exit
    )
    expect(l.linkNames(), "the lab's links after the run").toEqual(before.links)
    expect(peerLinks(l), "the peers' links after the run").toEqual(before.peers)
    expect(readlinkSync("/proc/self/ns/net"), "this thread's namespace").toBe(before.own)
    expect(filesUnder(join(runDirectory, "leases")), "leases left in the registry").toEqual([])
    return exit
  })

/** The world that mirrors the lab: the bridges as devices, a host on the bridge's segment per peer address. */
const simWorld = (scenario: Scenario): WorldSpec => ({
  devices: BRIDGES.map((b) => ({
    name: b.name,
    kind: "bridge" as const,
    ...(b.cidr === undefined ? {} : { address: b.cidr }),
    ...(b.secondary === undefined ? {} : { secondary: b.secondary })
  })),
  hosts: peersOf(scenario).flatMap((p) => p.addresses.map((address) => ({ segment: p.bridge, address })))
})

/** The pipeline on the simulated layer (TestClock); afterwards the world holds nothing of the run. */
const runOnSim = (scenario: Scenario, config: SandboxConfig) =>
  Effect.gen(function*() {
    const world = yield* SimWorld
    const initial = yield* Ref.get(world)
    const exit = yield* settle(Effect.scoped(Effect.gen(function*() {
      const sandbox = yield* Sandbox.run(config)
      expect(simView(yield* Ref.get(world), sandbox), "the world holds what the pipeline reported").toEqual(reported(sandbox))
      return sandbox
    })))
    const left = leftovers(initial, yield* Ref.get(world))
    expect(isClean(left), `left in the world: ${JSON.stringify(left)}`).toBe(true)
    return exit
  }).pipe(Effect.provide(layerSim(simWorld(scenario))))

describeKernel("--net=<bridge>: the simulated layer gives the kernel's outcome", () => {
  it.live("the lab is what the sim mirrors: the crowded peer holds 27 addresses and answers a probe for each", () =>
    Effect.gen(function*() {
      const crowded = scenarios.find((s) => s.name.includes("crowded"))!
      const l = yield* labFor(crowded)
      expect(peerAddresses(l)).toEqual(peersOf(crowded).map((p) => [...p.addresses]))
      const held = peersOf(crowded)[2]!.addresses
      expect(held).toHaveLength(27)
      // probed from br27 as chooseSandboxIp does: every held address answers, the two free ones do not
      const claims = yield* Effect.flatMap(Arp, (arp) =>
        arp.probe({
          endpoint: { device: "br27" },
          targets: range("10.10.40", 2, 30).map((a) => Option.getOrThrow(Ipv4.parse(a))),
          ...PROBE,
          window: Duration.millis(PROBE.window)
        })).pipe(Effect.scoped, Effect.provide(layerLinux({ hostNamespace: l.path, runDirectory: join(tmpdir(), l.name) })))
      expect([...claims.keys()].map(Ipv4.format).sort()).toEqual([...held].sort())
      expect([...claims.values()].every((c) => c.by === "reply")).toBe(true)
    }).pipe(Effect.scoped))

  describe("bridge scenarios", () => {
    for (const scenario of scenarios) {
      it.effect(scenario.name, () =>
        Effect.gen(function*() {
          const config = configFor(scenario)
          // the kernel on the real clock
          const l = yield* labFor(scenario)
          const kernelExit = yield* TestServices.provideLive(runOnKernel(l, config))
          const kernel = outcome(scenario, kernelExit)
          // the simulated world that mirrors the lab, on the TestClock
          const simExit = yield* runOnSim(scenario, config)
          const sim = outcome(scenario, simExit)
          expect(kernel, "the kernel's outcome").toEqual(scenario.expected)
          expect(sim, "the simulation's outcome").toEqual(kernel)
          expect(details(simExit), "the simulation's message and warnings").toEqual(details(kernelExit))
        }).pipe(Effect.scoped))
    }
  })
})
