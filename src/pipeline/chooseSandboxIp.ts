/**
 * Phase 2, per `--net`: the sandbox's IPv4 address. A static address is
 * checked (in the subnet, not network/broadcast/the device's/the gateway's,
 * leased by no other sandbox, answering no ARP); an automatic one is the first
 * free address of probed batches, so a crowded subnet costs a few probe
 * windows, not one per taken address. The host lock is held only while
 * leases are read and taken, never across a probe window, so concurrent
 * starts probe in parallel and still never pick the same address.
 */
import { Chunk, type Duration, Effect, ExecutionStrategy, Exit, Option, Random, Scope } from "effect"
import type { ProbePolicy } from "../domain/Config.js"
import * as Errors from "../domain/errors.js"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Subnet from "../domain/Subnet.js"
import { Arp, type ArpEndpoint } from "../services/Arp.js"
import { HostLock } from "../services/HostLock.js"
import { Links } from "../services/Links.js"
import { Registry } from "../services/Registry.js"
import type { Bridge } from "./configureBridge.js"
import { bestEffort } from "./release.js"

/** The first batch is small (a quiet subnet answers it in one window); later ones sweep the rest. */
export const FIRST_BATCH = 8
export const SWEEP_BATCH = 256

export interface Allocation {
  readonly policy: ProbePolicy
  readonly lockTimeout: Option.Option<Duration.Duration>
  /** Addresses this sandbox already took on another interface (grows as interfaces get theirs). */
  readonly reserved: Set<Ipv4.Ipv4>
}

/** Addresses the sandbox may take: the range or subnet hosts, less the device's and the gateway's. */
export const candidates = (
  bridge: Bridge,
  subnet: Subnet.Cidr,
  gateway: Option.Option<Ipv4.Ipv4>,
  reserved: ReadonlySet<Ipv4.Ipv4>
): Array<Ipv4.Ipv4> => {
  const range = bridge.request.iprange
  const first = range?.start ?? Subnet.firstHost(subnet)
  const last = range?.end ?? Subnet.lastHost(subnet)
  const excluded = new Set([...bridge.hostAddresses, ...Option.toArray(gateway), ...reserved])
  const out: Array<Ipv4.Ipv4> = []
  for (let ip = first; ip <= last; ip++) if (!excluded.has(ip as Ipv4.Ipv4)) out.push(ip as Ipv4.Ipv4)
  return out
}

const checkStatic = (bridge: Bridge, subnet: Subnet.Cidr, address: Ipv4.Ipv4, gateway: Option.Option<Ipv4.Ipv4>) =>
  Effect.gen(function*() {
    if (!Subnet.contains(subnet, address)) {
      return yield* new Errors.AddressOutsideSubnet({ address, device: bridge.device.name })
    }
    if (!Subnet.isHost(subnet, address)) return yield* new Errors.NetworkAddress({ address })
    if (bridge.hostAddresses.has(address)) {
      return yield* new Errors.AddressIsInterface({ address, device: bridge.device.name })
    }
    if (Option.contains(gateway, address)) return yield* new Errors.AddressIsGateway({ address })
  })

export const chooseSandboxIp = Effect.fn("chooseSandboxIp")(function*(
  bridge: Bridge,
  gateway: Option.Option<Ipv4.Ipv4>,
  allocation: Allocation,
  endpoint: ArpEndpoint
) {
  if (Option.isNone(bridge.subnet)) return Option.none<Subnet.Cidr>()
  const subnet = bridge.subnet.value
  const arp = yield* Arp
  const lock = yield* HostLock
  const registry = yield* Registry
  const links = yield* Links
  const segment = yield* registry.segmentOf(bridge.device.name)
  const sandboxScope = yield* Effect.scope
  const device = { device: bridge.device.name }

  const probe = (targets: ReadonlyArray<Ipv4.Ipv4>) =>
    arp.probe({ endpoint, targets, probes: allocation.policy.probes, window: allocation.policy.window })
  const withPrefix = (address: Ipv4.Ipv4) => Option.some(Subnet.make(address, subnet.prefix))

  /** Registry work under the host lock, after clearing what crashed starts left behind. */
  const underLock = <A, E, R>(work: Effect.Effect<A, E, R>) =>
    Effect.scoped(Effect.gen(function*() {
      yield* lock.acquire(allocation.lockTimeout)
      const { problems, pruned } = yield* registry.prune
      for (const problem of problems) yield* Effect.logWarning(problem)
      // a sandbox whose netjail was killed may linger, kept alive by a stray process: cut its cable
      for (const lease of pruned) {
        if (lease.hostVeth !== undefined) {
          yield* bestEffort(`remove ${lease.hostVeth} of a dead sandbox`, links.deleteHostLink(lease.hostVeth))
        }
      }
      return yield* work
    }))

  /** One lease per address, each in a scope of its own so that losing candidates are freed at once. */
  const lease = (address: Ipv4.Ipv4) =>
    Effect.gen(function*() {
      const scope = yield* Scope.fork(sandboxScope, ExecutionStrategy.sequential)
      yield* Scope.extend(registry.take(segment, address, device), scope)
      return scope
    })

  const mode = bridge.request.address
  if (mode._tag === "Static") {
    yield* checkStatic(bridge, subnet, mode.address, gateway)
    if (allocation.reserved.has(mode.address)) return yield* new Errors.AddressInUse({ address: mode.address })
    yield* underLock(lease(mode.address))
    const taken = yield* probe([mode.address])
    if (taken.has(mode.address)) return yield* new Errors.AddressInUse({ address: mode.address })
    return withPrefix(mode.address)
  }

  // Random order spreads concurrent starts apart and avoids always re-probing the busy low end.
  let pool = Chunk.toArray(yield* Random.shuffle(candidates(bridge, subnet, gateway, allocation.reserved)))
  let batchSize = FIRST_BATCH
  for (;;) {
    const batch = yield* underLock(Effect.gen(function*() {
      const held = yield* registry.leased(segment)
      const picked: Array<readonly [Ipv4.Ipv4, Scope.CloseableScope]> = []
      const rest: Array<Ipv4.Ipv4> = []
      for (const address of pool) {
        const state = held.get(address)
        // a running sandbox holds it for good; a start still probing may yet let it go
        if (state === "active") continue
        if (picked.length < batchSize && state === undefined) picked.push([address, yield* lease(address)])
        else rest.push(address)
      }
      return { picked, waiting: rest.filter((a) => held.has(a)).length, rest }
    }))
    pool = batch.rest
    if (batch.picked.length === 0) {
      if (batch.waiting === 0) return yield* new Errors.NoFreeAddress({ device: bridge.device.name })
      // every remaining candidate is leased by another start: wait for its verdict, then look again
      yield* Effect.sleep(allocation.policy.window)
      continue
    }
    const taken = yield* probe(batch.picked.map(([address]) => address))
    const winner = batch.picked.find(([address]) => !taken.has(address))
    for (const [address, scope] of batch.picked) {
      if (address !== winner?.[0]) yield* Scope.close(scope, Exit.void)
    }
    if (winner !== undefined) return withPrefix(winner[0])
    batchSize = SWEEP_BATCH
  }
})

