/**
 * Phase 2, per `--net`: the sandbox's IPv4 address. A static address is
 * checked (in the subnet, not network/broadcast/the device's/the gateway's,
 * nobody answers ARP); an automatic one is the first free address of probed
 * batches, so a crowded subnet costs a few probe windows, not one per taken address.
 */
import { Chunk, Effect, Option, Random } from "effect"
import type { ProbePolicy } from "../domain/Config.js"
import * as Errors from "../domain/errors.js"
import type { Ipv4 } from "../domain/Ipv4.js"
import * as Subnet from "../domain/Subnet.js"
import { Arp, type ArpEndpoint } from "../services/Arp.js"
import type { Bridge } from "./configureBridge.js"

/** The first batch is small (a quiet subnet answers it in one window); later ones sweep the rest. */
export const FIRST_BATCH = 8
export const SWEEP_BATCH = 256

/** Addresses the sandbox may take: the range or subnet hosts, less the device's and the gateway's. */
export const candidates = (
  bridge: Bridge,
  subnet: Subnet.Cidr,
  gateway: Option.Option<Ipv4>,
  reserved: ReadonlySet<Ipv4>
): Array<Ipv4> => {
  const range = bridge.request.iprange
  const first = range?.start ?? Subnet.firstHost(subnet)
  const last = range?.end ?? Subnet.lastHost(subnet)
  const excluded = new Set([...Option.toArray(bridge.hostAddress), ...Option.toArray(gateway), ...reserved])
  const out: Array<Ipv4> = []
  for (let ip = first; ip <= last; ip++) if (!excluded.has(ip as Ipv4)) out.push(ip as Ipv4)
  return out
}

const checkStatic = (bridge: Bridge, subnet: Subnet.Cidr, address: Ipv4, gateway: Option.Option<Ipv4>) =>
  Effect.gen(function*() {
    if (!Subnet.contains(subnet, address)) {
      return yield* new Errors.AddressOutsideSubnet({ address, device: bridge.device.name })
    }
    if (!Subnet.isHost(subnet, address)) return yield* new Errors.NetworkAddress({ address })
    if (Option.contains(bridge.hostAddress, address)) {
      return yield* new Errors.AddressIsInterface({ address, device: bridge.device.name })
    }
    if (Option.contains(gateway, address)) return yield* new Errors.AddressIsGateway({ address })
  })

export const chooseSandboxIp = Effect.fn("chooseSandboxIp")(function*(
  bridge: Bridge,
  gateway: Option.Option<Ipv4>,
  policy: ProbePolicy,
  endpoint: ArpEndpoint,
  /** Addresses this sandbox already took on another interface. */
  reserved: ReadonlySet<Ipv4> = new Set()
) {
  if (Option.isNone(bridge.subnet)) return Option.none<Subnet.Cidr>()
  const subnet = bridge.subnet.value
  const arp = yield* Arp
  const probe = (targets: ReadonlyArray<Ipv4>) =>
    arp.probe({ endpoint, targets, probes: policy.probes, window: policy.window })
  const withPrefix = (address: Ipv4) => Option.some(Subnet.make(address, subnet.prefix))

  const mode = bridge.request.address
  if (mode._tag === "Static") {
    yield* checkStatic(bridge, subnet, mode.address, gateway)
    if (reserved.has(mode.address)) return yield* new Errors.AddressInUse({ address: mode.address })
    const taken = yield* probe([mode.address])
    if (taken.has(mode.address)) return yield* new Errors.AddressInUse({ address: mode.address })
    return withPrefix(mode.address)
  }

  // Random order spreads concurrent hosts apart and avoids always re-probing the low, busy end.
  let pool = Chunk.toArray(yield* Random.shuffle(candidates(bridge, subnet, gateway, reserved)))
  let batch = FIRST_BATCH
  while (pool.length > 0) {
    const targets = pool.slice(0, batch)
    pool = pool.slice(batch)
    const taken = yield* probe(targets)
    const free = targets.find((ip) => !taken.has(ip))
    if (free !== undefined) return withPrefix(free)
    batch = SWEEP_BATCH
  }
  return yield* new Errors.NoFreeAddress({ device: bridge.device.name })
})
