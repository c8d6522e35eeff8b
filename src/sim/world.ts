/**
 * The simulated network: one immutable value holding the kernel objects the
 * pipeline touches (namespaces, links, addresses, routes, the lock, processes)
 * and the hosts living on each L2 segment. The layers in this folder read and
 * change it through one Ref, so a test can inspect it and inject faults.
 */
import { Context, Option, Ref } from "effect"
import * as Ipv4 from "../domain/Ipv4.js"
import type { Mac } from "../domain/Mac.js"
import type { Lease } from "../services/Registry.js"
import * as Subnet from "../domain/Subnet.js"

export const HOST = "host"

export type LinkKind = "loopback" | "bridge" | "ethernet" | "wireless" | "dummy" | "veth" | "macvlan" | "ipvlan"

export interface SimLink {
  readonly index: number
  readonly name: string
  readonly namespace: string
  readonly kind: LinkKind
  readonly mac: Mac
  readonly mtu: number
  readonly up: boolean
  readonly addresses: ReadonlyArray<Subnet.Cidr>
  /** The bridge this link is a port of. */
  readonly master?: number
  /** The other end of a veth pair. */
  readonly peer?: number
  /** The device a macvlan or ipvlan sits on. */
  readonly parent?: number
}

/** Another machine on a segment: it holds an address, or only probes for one (a competing starter). */
export interface SimHost {
  readonly segment: string
  readonly address: Ipv4.Ipv4
  readonly mac: Mac
  /** Milliseconds from a request to its reply; replies later than a probe window are missed in that window. */
  readonly latency: number
  /** How many of the first requests it ignores (lost frames, a host busy waking up). */
  readonly drops: number
  /** Virtual time (ms) at which it appears on the segment, and leaves it. */
  readonly joinsAt: number
  readonly leavesAt?: number
  /** True for a host that is itself probing for the address (RFC 5227 conflict) rather than using it. */
  readonly probing: boolean
}

export interface SimProcess {
  readonly pid: number
  readonly namespace: string
  readonly command: string
  readonly running: boolean
}

export interface SimRoute {
  readonly namespace: string
  readonly gateway: Ipv4.Ipv4
}

export interface Fault {
  /** Fail the n-th mutating kernel call (1-based) from now on... */
  readonly at: number
  readonly errno: number
}

export interface World {
  readonly namespaces: ReadonlyArray<string>
  readonly links: ReadonlyArray<SimLink>
  readonly routes: ReadonlyArray<SimRoute>
  readonly hosts: ReadonlyArray<SimHost>
  readonly hostGateway: Option.Option<Ipv4.Ipv4>
  readonly ipvlanSupported: boolean
  readonly lockHeld: boolean
  /** The lease registry's files, and the netjail processes that have died (their leases are stale). */
  readonly leases: ReadonlyArray<Lease>
  readonly deadOwners: ReadonlyArray<number>
  /** Entries a test corrupted: reported and removed by the next prune. */
  readonly corruptLeases: number
  readonly processes: ReadonlyArray<SimProcess>
  /** Exit status of a simulated command; unknown commands exit 0 at once. */
  readonly programs: Readonly<Record<string, number>>
  readonly fault: Option.Option<Fault>
  /** Counters: mutating kernel calls made, ARP probe frames sent. */
  readonly mutations: number
  readonly probesSent: number
  readonly nextIndex: number
  readonly nextId: number
}

/** The world as a service, so tests can read it and change it between steps. */
export class SimWorld extends Context.Tag("netjail/SimWorld")<SimWorld, Ref.Ref<World>>() {}

export interface DeviceSpec {
  readonly name: string
  readonly kind?: "bridge" | "ethernet" | "wireless" | "dummy"
  /** e.g. "10.10.20.1/24"; omitted for a device without IPv4. */
  readonly address?: string
  /** Further addresses on the same device. */
  readonly secondary?: ReadonlyArray<string>
  readonly mtu?: number
}

export interface HostSpec {
  readonly segment: string
  readonly address: string
  readonly latency?: number
  readonly drops?: number
  readonly joinsAt?: number
  readonly leavesAt?: number
  readonly probing?: boolean
}

export interface WorldSpec {
  readonly devices?: ReadonlyArray<DeviceSpec>
  readonly hosts?: ReadonlyArray<HostSpec>
  readonly hostGateway?: string
  readonly ipvlanSupported?: boolean
  readonly programs?: Readonly<Record<string, number>>
}

const parseIp = (text: string): Ipv4.Ipv4 =>
  Option.getOrThrowWith(Ipv4.parse(text), () => new Error(`bad address ${text}`))
const parseCidr = (text: string): Subnet.Cidr =>
  Option.getOrThrowWith(Subnet.parse(text), () => new Error(`bad CIDR ${text}`))

/** A deterministic locally administered MAC for the n-th object. */
export const macFor = (n: number, prefix = 0x02): Mac =>
  [prefix, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join(":") as Mac

export const makeWorld = (spec: WorldSpec = {}): World => {
  const links: Array<SimLink> = [
    { index: 1, name: "lo", namespace: HOST, kind: "loopback", mac: macFor(0, 0), mtu: 65536, up: true, addresses: [] }
  ]
  for (const device of spec.devices ?? []) {
    const index = links.length + 1
    links.push({
      index,
      name: device.name,
      namespace: HOST,
      kind: device.kind ?? "bridge",
      mac: macFor(index),
      mtu: device.mtu ?? 1500,
      up: true,
      addresses: [...(device.address ? [device.address] : []), ...(device.secondary ?? [])].map(parseCidr)
    })
  }
  return {
    namespaces: [HOST],
    links,
    routes: [],
    hosts: (spec.hosts ?? []).map((h, i) => ({
      segment: h.segment,
      address: parseIp(h.address),
      mac: macFor(1_000_000 + i, 0x06),
      latency: h.latency ?? 1,
      drops: h.drops ?? 0,
      joinsAt: h.joinsAt ?? 0,
      ...(h.leavesAt === undefined ? {} : { leavesAt: h.leavesAt }),
      probing: h.probing ?? false
    })),
    hostGateway: spec.hostGateway ? Option.some(parseIp(spec.hostGateway)) : Option.none(),
    ipvlanSupported: spec.ipvlanSupported ?? true,
    lockHeld: false,
    leases: [],
    deadOwners: [],
    corruptLeases: 0,
    processes: [],
    programs: spec.programs ?? {},
    fault: Option.none(),
    mutations: 0,
    probesSent: 0,
    nextIndex: links.length + 1,
    nextId: 1
  }
}

/** What a run left behind compared with the world it started from. */
export interface Leftovers {
  readonly links: ReadonlyArray<string>
  readonly namespaces: ReadonlyArray<string>
  readonly routes: number
  readonly lockHeld: boolean
  readonly leases: number
  readonly processes: ReadonlyArray<number>
}

export const leftovers = (before: World, after: World): Leftovers => {
  const known = new Set(before.links.map((l) => `${l.namespace}/${l.name}`))
  return {
    links: after.links.map((l) => `${l.namespace}/${l.name}`).filter((l) => !known.has(l)),
    namespaces: after.namespaces.filter((n) => !before.namespaces.includes(n)),
    routes: after.routes.length - before.routes.length,
    lockHeld: after.lockHeld && !before.lockHeld,
    leases: after.leases.length - before.leases.length,
    processes: after.processes.filter((p) => p.running).map((p) => p.pid)
  }
}

export const isClean = (l: Leftovers): boolean =>
  l.links.length === 0 && l.namespaces.length === 0 && l.routes === 0 && !l.lockHeld && l.leases === 0 &&
  l.processes.length === 0

/** The L2 segment a link sends on: its bridge, its parent device, or itself. */
export const segmentOf = (world: World, link: SimLink): string => {
  const byIndex = (i: number | undefined) => world.links.find((l) => l.index === i)
  if (link.kind === "veth" && link.peer !== undefined) {
    const peer = byIndex(link.peer)
    const bridge = byIndex(peer?.master ?? link.master)
    if (bridge) return bridge.name
  }
  if (link.parent !== undefined) return byIndex(link.parent)?.name ?? link.name
  return link.name
}

export const findLink = (world: World, namespace: string, name: string): Option.Option<SimLink> =>
  Option.fromNullable(world.links.find((l) => l.namespace === namespace && l.name === name))

export const formatWorld = (world: World): string =>
  world.links
    .map((l) => `${l.namespace}/${l.name} ${l.kind} ${l.addresses.map(Subnet.format).join(",")}`)
    .join("\n")
