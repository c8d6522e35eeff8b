/**
 * fast-check arbitraries for property tests against the simulated network:
 * subnets, who occupies them and how those hosts behave on ARP, and fault plans.
 */
import { FastCheck as fc } from "effect"
import { errno } from "../domain/errno.js"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Subnet from "../domain/Subnet.js"
import type { HostSpec, WorldSpec } from "./world.js"

/** Private and benchmarking ranges only: 10/8, 192.168/16, 198.18/15. */
const base = fc.oneof(
  fc.integer({ min: 0, max: 0x00ffffff }).map((n) => (0x0a000000 + n) >>> 0),
  fc.integer({ min: 0, max: 0xffff }).map((n) => (0xc0a80000 + n) >>> 0),
  fc.integer({ min: 0, max: 0x1ffff }).map((n) => (0xc6120000 + n) >>> 0)
)

/** A bridge's address and prefix; /24 to /30 by default, so whole subnets stay small enough to enumerate. */
export const bridgeCidr = (prefixes: { min: number; max: number } = { min: 24, max: 30 }) =>
  fc.tuple(base, fc.integer(prefixes)).chain(([seed, prefix]) => {
    const net = Subnet.make(seed as Ipv4.Ipv4, prefix)
    return fc.integer({ min: Subnet.firstHost(net), max: Subnet.lastHost(net) })
      .map((address) => Subnet.make(address as Ipv4.Ipv4, prefix))
  })

/** The host addresses of a subnet other than the bridge's own. */
export const hostAddresses = (cidr: Subnet.Cidr): Array<Ipv4.Ipv4> => {
  const out: Array<Ipv4.Ipv4> = []
  for (let ip = Subnet.firstHost(cidr); ip <= Subnet.lastHost(cidr); ip++) {
    if (ip !== cidr.address) out.push(ip as Ipv4.Ipv4)
  }
  return out
}

export interface ArpBehaviour {
  readonly latency: number
  readonly drops: number
  readonly joinsAt: number
  readonly probing: boolean
}

/** How an occupying host answers: mostly promptly; sometimes late, lossy, or itself probing. */
export const arpBehaviour = (window = 500, probes = 2): fc.Arbitrary<ArpBehaviour> =>
  fc.record({
    latency: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: window - 1 })),
    drops: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: probes - 1 }) }),
    joinsAt: fc.constant(0),
    probing: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
  })

/** Some of the subnet's addresses held by hosts with the given behaviour. */
export const occupancy = (cidr: Subnet.Cidr, behaviour = arpBehaviour()) =>
  fc.subarray(hostAddresses(cidr)).chain((taken) =>
    fc.array(behaviour, { minLength: taken.length, maxLength: taken.length }).map((behaviours) =>
      taken.map((address, i) => ({ address, ...behaviours[i]! }))
    )
  )

export interface Segment {
  readonly bridge: Subnet.Cidr
  readonly hosts: ReadonlyArray<{ readonly address: Ipv4.Ipv4 } & ArpBehaviour>
}

/** A bridge `br0` with its subnet and the hosts on it. */
export const segment = (options: { prefixes?: { min: number; max: number }; behaviour?: fc.Arbitrary<ArpBehaviour> } = {}) =>
  bridgeCidr(options.prefixes).chain((bridge) =>
    occupancy(bridge, options.behaviour).map((hosts): Segment => ({ bridge, hosts }))
  )

export const worldOf = (s: Segment, device = "br0"): WorldSpec => ({
  devices: [{ name: device, kind: "bridge", address: Subnet.format(s.bridge) }],
  hosts: s.hosts.map((h): HostSpec => ({
    segment: device,
    address: Ipv4.format(h.address),
    latency: h.latency,
    drops: h.drops,
    joinsAt: h.joinsAt,
    probing: h.probing
  }))
})

/** Fail the n-th mutating kernel call with one of the errors the kernel really returns there. */
export const faultPlan = (maxStep = 12) =>
  fc.record({
    at: fc.integer({ min: 1, max: maxStep }),
    errno: fc.constantFrom(errno.EEXIST, errno.ENODEV, errno.EBUSY, errno.ENOMEM, errno.EPERM, errno.ENOBUFS)
  })
