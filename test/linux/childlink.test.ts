/**
 * `--net=<ethernet device>` on the real kernel (issue 5): the sandbox gets a
 * macvlan (bridge mode) child of the device, born inside its namespace, and
 * chooses its address from inside over that child.
 *
 * The lab per test: namespace njt-<random> holding eth1 10.30.0.10/24, one end
 * of a veth pair whose other end, sw0, sits in `<lab>-w` (the wire) with
 * 10.30.0.1: the host on the far side, used as the gateway. Peers are macvlan
 * (bridge) children of eth1 moved into `<lab>-p<N>`, so they share the segment
 * with the sandbox's macvlan and answer its probes; eth1's own address cannot
 * answer them (a host does not hear its own macvlan children). Every namespace
 * is deleted with the test's scope, also when it fails.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Ref, TestServices } from "effect"
import {
  Ipv4,
  layerLinux,
  makeConfig,
  Namespaces,
  type RunningSandbox,
  Sandbox,
  type SandboxConfig,
  Subnet
} from "netjail"
import { isClean, layerSim, leftovers, SimWorld, type WorldSpec } from "netjail/testing"
import { failure, failureTag, settle } from "../property/clock.js"
import { eventually, isRunning, killIfRunning, namespaceHolders, SETTLE_MILLIS } from "./fixtures/processes.js"
import { describeKernel, kernelUnavailable, type Lab, lab, newLab } from "./lab.js"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const NETJAIL = fileURLToPath(new URL("../../dist/netjail.mjs", import.meta.url))

const DEVICE = "10.30.0.10"
/** sw0 on the far side of the wire. */
const WIRE_HOST = "10.30.0.1"
const PEERS = ["10.30.0.2", "10.30.0.3", "10.30.0.12"] as const
/** Two probes of 100 ms: a run costs about 0.2 s of probing. */
const PROBE = { probes: 2, window: 100 } as const

// ---- the lab ------------------------------------------------------------------------------

interface Segment {
  readonly lab: Lab
  readonly wire: string
  /** Peer namespaces, in PEERS order. */
  readonly peers: ReadonlyArray<string>
}

const ipIn = (namespace: string, ...args: ReadonlyArray<string>): string =>
  execFileSync("ip", ["-n", namespace, ...args], { encoding: "utf8", stdio: "pipe" })

/**
 * eth1 in a lab, the wire host behind it, and the peers; `route` adds a default
 * route in the lab via that address (on eth1's subnet, so it needs no answer).
 */
const segment = (options: { readonly route?: string } = {}) =>
  Effect.gen(function*() {
    const l = yield* lab
    return yield* Effect.sync((): Segment => {
      const wire = `${l.name}-w`
      // registered before creation, so the lab's deletion takes whatever exists
      l.peers.push(wire)
      execFileSync("ip", ["netns", "add", wire], { stdio: "pipe" })
      l.ip("link", "add", "eth1", "type", "veth", "peer", "name", "sw0", "netns", wire)
      l.ip("addr", "add", `${DEVICE}/24`, "dev", "eth1")
      l.ip("link", "set", "eth1", "up")
      ipIn(wire, "link", "set", "lo", "up")
      ipIn(wire, "addr", "add", `${WIRE_HOST}/24`, "dev", "sw0")
      ipIn(wire, "link", "set", "sw0", "up")
      if (options.route !== undefined) l.ip("route", "add", "default", "via", options.route)
      const peers = PEERS.map((address, i) => {
        const ns = `${l.name}-p${i + 1}`
        const name = `mv${i + 1}`
        l.peers.push(ns)
        execFileSync("ip", ["netns", "add", ns], { stdio: "pipe" })
        l.ip("link", "add", name, "link", "eth1", "type", "macvlan", "mode", "bridge")
        l.ip("link", "set", name, "netns", ns)
        ipIn(ns, "addr", "add", `${address}/24`, "dev", name)
        ipIn(ns, "link", "set", name, "up")
        ipIn(ns, "link", "set", "lo", "up")
        return ns
      })
      return { lab: l, wire, peers }
    })
  })

/**
 * Whether `address` answers from inside `namespace`: ARP resolves and the
 * kernel behind it refuses a TCP connection (nothing listens on port 9).
 * Returns the MAC the address resolved to, or undefined when nobody answered.
 */
const resolvedFrom = (namespace: string, address: string): string | undefined => {
  execFileSync("ip", ["-n", namespace, "neigh", "flush", "all"], { stdio: "pipe" })
  const attempt = spawnSync(
    "ip",
    ["netns", "exec", namespace, "timeout", "0.3", "bash", "-c", `exec 3<>/dev/tcp/${address}/9`],
    { encoding: "utf8" }
  )
  if (!/Connection refused/.test(attempt.stderr) && attempt.status !== 0) return undefined
  const [entry] = JSON.parse(ipIn(namespace, "-json", "neigh", "show", address)) as Array<{ lladdr?: string }>
  return entry?.lladdr ?? "answered"
}

/** One-time check: does this kernel have the ipvlan driver? (in a throw-away njt- namespace) */
const probeIpvlan = (): boolean => {
  if (kernelUnavailable !== undefined) return false
  const l = newLab()
  try {
    l.ip("link", "add", "eth1", "type", "veth", "peer", "name", "sw0")
    l.ip("link", "add", "ipv0", "link", "eth1", "type", "ipvlan", "mode", "l2")
    return true
  } catch {
    return false
  } finally {
    l.delete()
  }
}
const ipvlanSupported = probeIpvlan()

// ---- nothing left behind -------------------------------------------------------------------

const delay = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))


const readlink = (path: string): string | undefined => {
  try {
    return readlinkSync(path)
  } catch {
    return undefined // gone meanwhile
  }
}

/**
 * The network namespaces this test process holds: open fds to namespaces other
 * than its own (netjail keeps one to its own for switching back), and the
 * namespace of each of its threads.
 */
const ownNamespaces = () => ({
  fds: readdirSync("/proc/self/fd")
    .map((fd) => readlink(`/proc/self/fd/${fd}`))
    .filter((t) => t?.startsWith("net:") && t !== readlink("/proc/self/ns/net"))
    .sort(),
  threads: [...new Set(readdirSync("/proc/self/task").map((t) => readlink(`/proc/self/task/${t}/ns/net`)))].sort()
})


/** Every file below a directory (none when it does not exist). */
const filesUnder = (directory: string): Array<string> =>
  existsSync(directory) ? readdirSync(directory, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name)) : []

/** Named namespaces other than the project's own labs and benches (nj?-*), which come and go. */
const foreignNamespaces = (): Array<string> =>
  (existsSync("/run/netns") ? readdirSync("/run/netns") : []).filter((n) => !/^nj[a-z]-/.test(n)).sort()

interface Baseline {
  readonly links: Array<string>
  readonly own: ReturnType<typeof ownNamespaces>
  readonly named: Array<string>
}

const baseline = (s: Segment): Baseline => ({ links: s.lab.linkNames(), own: ownNamespaces(), named: foreignNamespaces() })

/** What a sandbox left to check: its namespace (`net:[inode]`), its command, its address on the segment. */
interface Traces {
  readonly namespace: string
  readonly pid: number
  readonly address: Option.Option<string>
}

/**
 * Nothing left: the lab's links as before (the macvlan never was one of them),
 * no namespace fd or thread namespace left in this process, no new named
 * namespace; and for a sandbox that ran, its command is gone, nothing holds its
 * namespace, and its address no longer answers on the segment (the macvlan died
 * with the namespace).
 */
const expectNothingLeft = async (s: Segment, before: Baseline, traces?: Traces): Promise<void> => {
  expect(s.lab.linkNames()).toEqual(before.links)
  expect(ownNamespaces()).toEqual(before.own)
  expect(foreignNamespaces()).toEqual(before.named)
  if (traces === undefined) return
  await eventually(() => expect(isRunning(traces.pid), `command ${traces.pid} still runs`).toBe(false), SETTLE_MILLIS)
  await eventually(() => expect(namespaceHolders(traces.namespace)).toEqual([]), SETTLE_MILLIS)
  if (Option.isSome(traces.address)) {
    const address = traces.address.value
    await eventually(() => expect(resolvedFrom(s.peers[0]!, address), `${address} still answers`).toBeUndefined(), 3000)
  }
}

// ---- running the pipeline on the lab ------------------------------------------------------

/** What the sandbox looked like from inside and from the segment while it ran. */
interface Inside extends Traces {
  readonly sandbox: RunningSandbox
  /** `ip -json -d link show eth0` inside. */
  readonly link: any
  readonly links: Array<string>
  readonly inet: Array<{ readonly local: string; readonly prefixlen: number }>
  readonly routes: Array<any>
  /** The MAC peer 1 resolved the sandbox address to. */
  readonly peerSees: string | undefined
  /** The MAC the sandbox resolved the wire host to, over the macvlan. */
  readonly wireHostSeen: string | undefined
}

/** Runs `sleep` in the sandbox and looks inside through its namespace. */
const observe = (s: Segment) =>
  Effect.gen(function*() {
    const sandbox = yield* Sandbox
    const child = yield* (yield* Namespaces).spawn(sandbox.namespace, { command: "sleep", args: ["100"] })
    const net = `/proc/${child.pid}/ns/net`
    const namespace = readlinkSync(net)
    const inside = (...args: ReadonlyArray<string>) =>
      execFileSync("nsenter", [`--net=${net}`, ...args], { encoding: "utf8", stdio: "pipe" })
    const json = (...args: ReadonlyArray<string>) => JSON.parse(inside("ip", "-json", ...args))
    const [link] = json("-d", "link", "show", "eth0")
    const [addr] = json("addr", "show", "eth0")
    const address = Option.map(sandbox.interfaces[0]!.address, (a) => Ipv4.format(a.address))
    // from inside: the wire host, through eth0 and eth1's veth
    inside("ip", "neigh", "flush", "all")
    const reached = spawnSync("nsenter", [`--net=${net}`, "timeout", "0.5", "bash", "-c", `exec 3<>/dev/tcp/${WIRE_HOST}/9`], {
      encoding: "utf8"
    })
    const [wireEntry] = /Connection refused/.test(reached.stderr) ? json("neigh", "show", WIRE_HOST) : []
    return {
      sandbox,
      namespace,
      pid: child.pid,
      address,
      link,
      links: (json("link", "show") as Array<{ ifname: string }>).map((l) => l.ifname).sort(),
      inet: addr.addr_info.filter((a: any) => a.family === "inet").map((a: any) => ({ local: a.local, prefixlen: a.prefixlen })),
      routes: json("route", "show", "default"),
      peerSees: Option.isSome(address) ? resolvedFrom(s.peers[0]!, address.value) : undefined,
      wireHostSeen: wireEntry?.lladdr
    } satisfies Inside
  })

/** The pipeline in-process on the lab's devices, then the check that nothing is left. */
const runOnKernel = (s: Segment, config: SandboxConfig) =>
  Effect.gen(function*() {
    const before = baseline(s)
    // the host lock and the lease registry of this lab, not the host's /run/netjail
    const runDirectory = join(tmpdir(), s.lab.name)
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(runDirectory, { force: true, recursive: true })))
    const exit = yield* observe(s).pipe(
      Effect.scoped,
      Effect.provide(Sandbox.layer(config)),
      Effect.provide(layerLinux({ hostNamespace: s.lab.path, runDirectory })),
      Effect.exit
    )
    yield* Effect.promise(() => expectNothingLeft(s, before, Exit.isSuccess(exit) ? exit.value : undefined))
    expect(filesUnder(join(runDirectory, "leases")), "leases left in the registry").toEqual([])
    return exit
  })

const succeeded = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw new Error(`the sandbox failed: ${Cause.pretty(exit.cause)}`)
}

const configFor = (request: Record<string, unknown> = {}, defaultGateway?: string): SandboxConfig =>
  makeConfig({
    interfaces: [{ device: "eth1", ...request }],
    probe: PROBE,
    ...(defaultGateway === undefined ? {} : { defaultGateway })
  })

const octet = (address: string) => Number(address.split(".")[3])

describeKernel("--net=<ethernet device> on the kernel", () => {
  describe("automatic address", () => {
    it.live("eth0 is a macvlan (bridge) child of eth1 inside the sandbox, with a free address and the host's gateway", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const [eth1] = s.lab.json("link", "show", "eth1")
        const inside = succeeded(yield* runOnKernel(s, configFor()))
        const [eth0] = inside.sandbox.interfaces
        expect(inside.sandbox.interfaces).toHaveLength(1)
        expect(eth0).toMatchObject({ name: "eth0", device: "eth1", wiring: "macvlan", hostName: Option.none(), mtu: 1500 })
        const address = Option.getOrThrow(eth0!.address)
        const ip = Ipv4.format(address.address)
        expect(Subnet.format(address)).toMatch(/^10\.30\.0\.\d+\/24$/)
        expect([0, 255, octet(DEVICE), octet(WIRE_HOST), ...PEERS.map(octet)]).not.toContain(octet(ip))
        expect(inside.sandbox.gateway).toEqual(Ipv4.parse(WIRE_HOST))
        // the kernel's view inside: only lo and eth0, a macvlan in bridge mode on the lab's eth1
        expect(inside.links).toEqual(["eth0", "lo"])
        expect(inside.link).toMatchObject({
          ifname: "eth0",
          link_index: eth1.ifindex,
          address: eth0!.mac,
          mtu: 1500,
          operstate: "UP",
          linkinfo: { info_kind: "macvlan", info_data: { mode: "bridge" } }
        })
        expect(inside.inet).toEqual([{ local: ip, prefixlen: 24 }])
        expect(inside.routes).toEqual([expect.objectContaining({ dst: "default", gateway: WIRE_HOST, dev: "eth0" })])
        // on the segment: a peer finds the sandbox at eth0's MAC, and the sandbox reaches the far side of the wire
        expect(inside.peerSees).toBe(eth0!.mac)
        const [sw0] = JSON.parse(ipIn(s.wire, "-json", "link", "show", "sw0"))
        expect(inside.wireHostSeen).toBe(sw0.address)
      }).pipe(Effect.scoped))

    it.live("without a default route in the host there is no gateway and no route", () =>
      Effect.gen(function*() {
        const s = yield* segment()
        const inside = succeeded(yield* runOnKernel(s, configFor()))
        expect(inside.sandbox.gateway).toEqual(Option.none())
        expect(inside.routes).toEqual([])
        expect(inside.sandbox.warnings).toEqual([])
        const ip = Option.getOrThrow(inside.address)
        expect([DEVICE, WIRE_HOST, ...PEERS]).not.toContain(ip)
        expect(inside.inet).toEqual([{ local: ip, prefixlen: 24 }])
      }).pipe(Effect.scoped))

    it.live("--defaultgw wins over the host's default route", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const inside = succeeded(yield* runOnKernel(s, configFor({}, "10.30.0.5")))
        expect(inside.sandbox.gateway).toEqual(Ipv4.parse("10.30.0.5"))
        expect(inside.routes).toEqual([expect.objectContaining({ dst: "default", gateway: "10.30.0.5", dev: "eth0" })])
        expect(Option.getOrThrow(inside.address)).not.toBe("10.30.0.5")
      }).pipe(Effect.scoped))

    it.live("skips eth1's own address and the gateway, which cannot answer through the macvlan, and every peer", () =>
      Effect.gen(function*() {
        // .10 is eth1, .11 the (silent) host gateway, .12 a peer: .13 is the only address left
        const s = yield* segment({ route: "10.30.0.11" })
        for (let run = 0; run < 3; run++) {
          const inside = succeeded(yield* runOnKernel(s, configFor({ iprange: { start: "10.30.0.10", end: "10.30.0.13" } })))
          expect(inside.inet).toEqual([{ local: "10.30.0.13", prefixlen: 24 }])
          expect(inside.routes).toEqual([expect.objectContaining({ dst: "default", gateway: "10.30.0.11" })])
        }
        // and with .13 out of the range nothing is left
        const exit = yield* runOnKernel(s, configFor({ iprange: { start: "10.30.0.10", end: "10.30.0.12" } }))
        expect(failureTag(exit)).toBe("NoFreeAddress")
      }).pipe(Effect.scoped))
  })

  describe("static address", () => {
    it.live("a free address is configured", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const inside = succeeded(yield* runOnKernel(s, configFor({ address: { _tag: "Static", address: "10.30.0.77" } })))
        expect(inside.inet).toEqual([{ local: "10.30.0.77", prefixlen: 24 }])
        expect(inside.sandbox.interfaces[0]!.address.pipe(Option.map(Subnet.format))).toEqual(Option.some("10.30.0.77/24"))
        expect(inside.peerSees).toBe(inside.sandbox.interfaces[0]!.mac)
      }).pipe(Effect.scoped))

    const refusals: ReadonlyArray<readonly [string, string, string, string]> = [
      ["a peer's address", PEERS[0], "AddressInUse", "IP address 10.30.0.2 is already in use"],
      ["the wire host's address (no gateway)", WIRE_HOST, "AddressInUse", "IP address 10.30.0.1 is already in use"],
      ["eth1's own address", DEVICE, "AddressIsInterface", "10.30.0.10 is interface eth1 address"]
    ]
    for (const [what, address, tag, message] of refusals) {
      it.live(`refuses ${what}: ${message}`, () =>
        Effect.gen(function*() {
          const s = yield* segment()
          const exit = yield* runOnKernel(s, configFor({ address: { _tag: "Static", address } }))
          expect(failureTag(exit)).toBe(tag)
          expect((failure(exit) as Error).message).toBe(message)
        }).pipe(Effect.scoped))
    }

    it.live("refuses the gateway's address: 10.30.0.1 is the default gateway", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const exit = yield* runOnKernel(s, configFor({ address: { _tag: "Static", address: WIRE_HOST } }))
        expect(failureTag(exit)).toBe("AddressIsGateway")
        expect((failure(exit) as Error).message).toBe("10.30.0.1 is the default gateway")
      }).pipe(Effect.scoped))
  })

  describe("the macvlan's settings", () => {
    it.live("--mac and --mtu are applied to the macvlan, and the segment sees that MAC", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const inside = succeeded(yield* runOnKernel(s, configFor({ mac: "02:11:22:33:44:55", mtu: 1400 })))
        expect(inside.sandbox.interfaces[0]).toMatchObject({ mac: "02:11:22:33:44:55", mtu: 1400, wiring: "macvlan" })
        expect(inside.link).toMatchObject({ address: "02:11:22:33:44:55", mtu: 1400, linkinfo: { info_kind: "macvlan" } })
        expect(inside.peerSees).toBe("02:11:22:33:44:55")
        // the parent keeps its own
        expect(s.lab.json("link", "show", "eth1")[0]).toMatchObject({ mtu: 1500 })
      }).pipe(Effect.scoped))
  })

  describe("ipvlan", () => {
    if (!ipvlanSupported) {
      it.live("without the ipvlan driver: IpvlanUnsupported naming ipvlan and CONFIG_IPVLAN, and nothing left", () =>
        Effect.gen(function*() {
          const s = yield* segment({ route: WIRE_HOST })
          const exit = yield* runOnKernel(s, configFor({ ipvlan: true }))
          expect(failureTag(exit)).toBe("IpvlanUnsupported")
          const message = (failure(exit) as Error).message
          expect(message).toContain("ipvlan")
          expect(message).toContain("CONFIG_IPVLAN")
          expect(message).toContain("eth1")
        }).pipe(Effect.scoped))
    } else {
      it.live("with the ipvlan driver: eth0 is an ipvlan (L2) child with the parent's MAC and a free address", () =>
        Effect.gen(function*() {
          const s = yield* segment({ route: WIRE_HOST })
          const [eth1] = s.lab.json("link", "show", "eth1")
          const inside = succeeded(yield* runOnKernel(s, configFor({ ipvlan: true })))
          expect(inside.sandbox.interfaces[0]).toMatchObject({ wiring: "ipvlan", mac: eth1.address })
          expect(inside.link).toMatchObject({ linkinfo: { info_kind: "ipvlan" } })
          expect([DEVICE, WIRE_HOST, ...PEERS]).not.toContain(Option.getOrThrow(inside.address))
        }).pipe(Effect.scoped))
    }
  })

  describe("nothing is left", () => {
    // runOnKernel checks it after every run; these name the three endings
    it.live("after a run that succeeded", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const inside = succeeded(yield* runOnKernel(s, configFor()))
        // the command and the address were there while it ran, gone since (checked by runOnKernel)
        expect(inside.peerSees).toBeDefined()
        expect(isRunning(inside.pid)).toBe(false)
        expect(namespaceHolders(inside.namespace)).toEqual([])
      }).pipe(Effect.scoped))

    it.live("after a run that failed once its macvlan existed (static address in use)", () =>
      Effect.gen(function*() {
        const s = yield* segment({ route: WIRE_HOST })
        const exit = yield* runOnKernel(s, configFor({ address: { _tag: "Static", address: PEERS[1] } }))
        expect(failureTag(exit)).toBe("AddressInUse")
        // the segment is usable right after: the next run configures its address
        const inside = succeeded(yield* runOnKernel(s, configFor({ address: { _tag: "Static", address: "10.30.0.78" } })))
        expect(inside.inet).toEqual([{ local: "10.30.0.78", prefixlen: 24 }])
      }).pipe(Effect.scoped))

    it.live("after SIGKILL of the CLI: its command dies and the macvlan goes with the namespace within a second", () =>
      Effect.gen(function*() {
        if (!existsSync(NETJAIL)) execFileSync(process.execPath, ["scripts/bundle.mjs"], { cwd: ROOT, stdio: "pipe" })
        const s = yield* segment({ route: WIRE_HOST })
        const before = baseline(s)
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn("ip", [
              "netns",
              "exec",
              s.lab.name,
              process.execPath,
              NETJAIL,
              "--net=eth1",
              "--arp-timeout=100",
              "--",
              "sh",
              "-c",
              "echo $$ $(readlink /proc/self/ns/net); exec sleep 100"
            ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
          ),
          (c) => Effect.sync(() => void (c.exitCode === null && c.signalCode === null && c.kill("SIGKILL")))
        )
        const out = collect(child)
        yield* Effect.promise(() => waitUntil(() => (out.stdout.includes("\n") && /^eth0 /m.test(out.stderr)) || out.exited, 15_000))
        expect(out.exited, `netjail ended early: ${out.stderr}`).toBe(false)
        const [pidText, namespace] = out.stdout.split("\n")[0]!.split(" ")
        const pid = Number(pidText)
        yield* Effect.addFinalizer(() => Effect.sync(() => killIfRunning(pid, "sleep")))
        expect(namespace).toMatch(/^net:\[\d+\]$/)
        const row = out.stderr.split("\n").map((line) => line.trim().split(/\s+/)).find((cells) => cells[0] === "eth0")!
        const address = row[2]!
        expect(address).toMatch(/^10\.30\.0\.\d+$/)
        expect([DEVICE, WIRE_HOST, ...PEERS]).not.toContain(address)
        expect(out.stderr).toContain(`Default gateway ${WIRE_HOST}\n`)
        expect(isRunning(pid)).toBe(true)
        expect(resolvedFrom(s.peers[0]!, address)).toBe(row[1])

        // a killed netjail cannot release its lease; the next start would prune it, we remove ours now
        const segmentDirectory = join(RUN_DIRECTORY, "leases", `${statSync(s.lab.path).ino}-eth1`)
        yield* Effect.addFinalizer(() => Effect.sync(() => removeLeasesOf(segmentDirectory, child.pid!)))
        // by pid, the child we started: `ip netns exec` execs node, so it is netjail itself
        child.kill("SIGKILL")
        yield* Effect.promise(() => eventually(() => expect(isRunning(pid), "the sandboxed sleep").toBe(false), SETTLE_MILLIS))
        yield* Effect.promise(() => eventually(() => expect(namespaceHolders(namespace!)).toEqual([]), SETTLE_MILLIS))
        yield* Effect.promise(() => expectNothingLeft(s, before, { pid, namespace: namespace!, address: Option.some(address) }))
      }).pipe(Effect.scoped))
  })

  // ---- the simulated layer on the same scenarios ------------------------------------------

  interface Scenario {
    readonly name: string
    /** The lab's default route. */
    readonly route?: string
    readonly request?: Record<string, unknown>
    readonly defaultGateway?: string
    /** What both layers must give (see `outcome`). */
    readonly expected: Record<string, unknown>
  }

  const success = (fields: Record<string, unknown> = {}) => ({
    name: "eth0",
    wiring: "macvlan",
    address: "free",
    prefix: 24,
    gateway: WIRE_HOST,
    mtu: 1500,
    mac: "any",
    ...fields
  })

  const scenarios: ReadonlyArray<Scenario> = [
    { name: "auto with the host's gateway", route: WIRE_HOST, expected: success() },
    { name: "auto without a host default route", expected: success({ gateway: null }) },
    { name: "auto with --defaultgw", route: WIRE_HOST, defaultGateway: "10.30.0.5", expected: success({ gateway: "10.30.0.5" }) },
    {
      name: "a range whose only free address is the last",
      route: "10.30.0.11",
      request: { iprange: { start: "10.30.0.10", end: "10.30.0.13" } },
      expected: success({ address: "10.30.0.13", gateway: "10.30.0.11" })
    },
    {
      name: "a range without a free address",
      route: "10.30.0.11",
      request: { iprange: { start: "10.30.0.10", end: "10.30.0.12" } },
      expected: { failure: "NoFreeAddress" }
    },
    {
      name: "a free static address",
      route: WIRE_HOST,
      request: { address: { _tag: "Static", address: "10.30.0.77" } },
      expected: success({ address: "10.30.0.77" })
    },
    { name: "a peer's static address", request: { address: { _tag: "Static", address: PEERS[0] } }, expected: { failure: "AddressInUse" } },
    {
      name: "the wire host's static address",
      request: { address: { _tag: "Static", address: WIRE_HOST } },
      expected: { failure: "AddressInUse" }
    },
    {
      name: "eth1's own static address",
      route: WIRE_HOST,
      request: { address: { _tag: "Static", address: DEVICE } },
      expected: { failure: "AddressIsInterface" }
    },
    {
      name: "the gateway's static address",
      route: WIRE_HOST,
      request: { address: { _tag: "Static", address: WIRE_HOST } },
      expected: { failure: "AddressIsGateway" }
    },
    {
      name: "--mac and --mtu",
      route: WIRE_HOST,
      request: { mac: "02:11:22:33:44:55", mtu: 1400 },
      expected: success({ mac: "02:11:22:33:44:55", mtu: 1400 })
    },
    {
      name: "--ipvlan",
      route: WIRE_HOST,
      request: { ipvlan: true },
      expected: ipvlanSupported ? success({ wiring: "ipvlan" }) : { failure: "IpvlanUnsupported" }
    }
  ]

  /**
   * The outcome class: the failure's tag, or the interface with its address
   * classified: `taken <ip>` if it is the device's, the wire host's, a peer's or
   * the gateway's; the address itself where the scenario fixes it; else `free`.
   */
  const outcome = (scenario: Scenario, exit: Exit.Exit<RunningSandbox, unknown>): Record<string, unknown> => {
    if (Exit.isFailure(exit)) {
      const tag = Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e: any) => e?._tag as string))
      return { failure: tag ?? Cause.pretty(exit.cause) }
    }
    const sandbox = exit.value
    const [eth0] = sandbox.interfaces
    const gateway = Option.getOrNull(Option.map(sandbox.gateway, Ipv4.format))
    const address = Option.getOrUndefined(eth0!.address)
    const ip = address === undefined ? "none" : Ipv4.format(address.address)
    const taken = new Set<string>([DEVICE, WIRE_HOST, ...PEERS, ...(gateway === null ? [] : [gateway])])
    const fixed = scenario.request?.address !== undefined || scenario.request?.iprange !== undefined
    return {
      interfaces: sandbox.interfaces.length,
      name: eth0!.name,
      wiring: eth0!.wiring,
      address: taken.has(ip) ? `taken ${ip}` : fixed || ip === "none" ? ip : "free",
      prefix: address?.prefix,
      gateway,
      mtu: eth0!.mtu,
      mac: scenario.request?.mac === undefined ? "any" : eth0!.mac
    }
  }

  const simWorld = (scenario: Scenario): WorldSpec => ({
    devices: [{ name: "eth1", kind: "ethernet", address: `${DEVICE}/24` }],
    hosts: [WIRE_HOST, ...PEERS].map((address) => ({ segment: "eth1", address })),
    ...(scenario.route === undefined ? {} : { hostGateway: scenario.route }),
    ipvlanSupported
  })

  describe("the simulated layer gives the kernel's outcome", () => {
    for (const scenario of scenarios) {
      it.effect(scenario.name, () =>
        Effect.gen(function*() {
          const config = configFor(scenario.request, scenario.defaultGateway)
          // the kernel on the real clock
          const s = yield* segment(scenario.route === undefined ? {} : { route: scenario.route })
          const kernelExit = yield* TestServices.provideLive(runOnKernel(s, config))
          const kernel = outcome(scenario, Exit.map(kernelExit, (inside) => inside.sandbox))
          // the simulated world that mirrors the lab, on the TestClock
          const sim = yield* Effect.gen(function*() {
            const world = yield* SimWorld
            const initial = yield* Ref.get(world)
            const exit = yield* settle(Effect.scoped(Sandbox.run(config)))
            expect(isClean(leftovers(initial, yield* Ref.get(world)))).toBe(true)
            return outcome(scenario, exit)
          }).pipe(Effect.provide(layerSim(simWorld(scenario))))
          const expected = "failure" in scenario.expected ? scenario.expected : { interfaces: 1, ...scenario.expected }
          expect(kernel).toEqual(expected)
          expect(sim).toEqual(kernel)
        }).pipe(Effect.scoped))
    }
  })
})

// ---- the CLI ------------------------------------------------------------------------------

/** The CLI's lock and lease registry. */
const RUN_DIRECTORY = "/run/netjail"

/** Removes the leases a given netjail process holds in one segment's directory, and the directory once empty. */
const removeLeasesOf = (directory: string, pid: number): void => {
  for (const name of existsSync(directory) ? readdirSync(directory) : []) {
    try {
      const lease = JSON.parse(readFileSync(join(directory, name), "utf8"))
      if (lease?.owner?.pid === pid) rmSync(join(directory, name), { force: true })
    } catch {
      // not a lease of ours, or gone meanwhile
    }
  }
  try {
    rmdirSync(directory)
  } catch {
    // not empty: other leases live there
  }
}

interface Collected {
  stdout: string
  stderr: string
  exited: boolean
}

const collect = (child: ChildProcess): Collected => {
  const out: Collected = { stdout: "", stderr: "", exited: false }
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (out.stdout += text))
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (out.stderr += text))
  child.on("exit", () => (out.exited = true))
  return out
}

const waitUntil = async (condition: () => boolean, millis: number): Promise<void> => {
  const deadline = Date.now() + millis
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${millis} ms`)
    await delay(10)
  }
}
