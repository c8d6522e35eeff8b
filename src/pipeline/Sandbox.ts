/**
 * The pipeline: checked config → configureBridge → chooseSandboxIp (leases
 * taken under the host lock, probes outside it) → clone → vethPair /
 * childLink → waitForIp → leases turned active. Every resource is scoped: a
 * failure or an interruption at any step removes what was created, in
 * reverse order, leases included.
 */
import { Clock, Context, Effect, Layer, Option, Random } from "effect"
import type { SandboxConfig } from "../domain/Config.js"
import type { Ipv4 } from "../domain/Ipv4.js"
import type { Mac } from "../domain/Mac.js"
import type { Cidr } from "../domain/Subnet.js"
import { checkConfig } from "../domain/validate.js"
import type { SandboxNamespace } from "../services/Namespaces.js"
import { Registry } from "../services/Registry.js"
import { childLink } from "./childLink.js"
import { type Allocation, chooseSandboxIp } from "./chooseSandboxIp.js"
import { clone } from "./clone.js"
import { type Bridge, configureBridge, sandboxName, type Wiring } from "./configureBridge.js"
import { chooseGateway, installDefaultRoute } from "./gateway.js"
import { vethPair } from "./vethPair.js"
import { waitForIp } from "./waitForIp.js"

export interface SandboxInterface {
  /** eth0..eth3 inside the sandbox. */
  readonly name: string
  /** The host device it is wired to. */
  readonly device: string
  readonly wiring: Wiring
  /** The host end of a veth pair. */
  readonly hostName: Option.Option<string>
  readonly address: Option.Option<Cidr>
  readonly mac: Mac
  readonly mtu: number
}

export interface PhaseTiming {
  readonly phase: string
  readonly millis: number
}

export interface RunningSandbox {
  readonly namespace: SandboxNamespace
  readonly interfaces: ReadonlyArray<SandboxInterface>
  readonly gateway: Option.Option<Ipv4>
  readonly warnings: ReadonlyArray<string>
  readonly timings: ReadonlyArray<PhaseTiming>
}

/** What a run would do, without creating anything (`--dry-run`). */
export interface SandboxPlan {
  readonly bridges: ReadonlyArray<Bridge>
  readonly gateway: Option.Option<Ipv4>
  /** Per interface: the chosen address; macvlan/ipvlan addresses are chosen from inside at start. */
  readonly addresses: ReadonlyArray<Option.Option<Cidr>>
  readonly warnings: ReadonlyArray<string>
}

const stopwatch = (timings: Array<PhaseTiming>) =>
<A, E, R>(phase: string, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeNanos
    const result = yield* effect
    timings.push({ phase, millis: Number((yield* Clock.currentTimeNanos) - start) / 1e6 })
    return result
  })

/** A host-side veth name that no earlier sandbox's lingering pair still holds: veth<random>eth<N>. */
const hostVethName = (bridge: Bridge) =>
  bridge.request.vethName !== undefined
    ? Effect.succeed(bridge.request.vethName)
    : Effect.map(Random.nextIntBetween(0, 36 ** 5), (n) => `veth${n.toString(36).padStart(5, "0")}${sandboxName(bridge.slot)}`)

/** The addresses of the bridged interfaces, chosen from the host (macvlan/ipvlan ones are chosen from inside later). */
const chooseAddresses = (bridges: ReadonlyArray<Bridge>, gateway: Option.Option<Ipv4>, allocation: Allocation) =>
  Effect.gen(function*() {
    const addresses: Array<Option.Option<Cidr>> = []
    for (const bridge of bridges) {
      const address = bridge.wiring === "veth"
        ? yield* chooseSandboxIp(bridge, gateway, allocation, { device: bridge.device.name })
        : Option.none<Cidr>()
      Option.map(address, (a) => allocation.reserved.add(a.address))
      addresses.push(address)
    }
    return addresses
  })

const allocationOf = (config: SandboxConfig) => ({
  policy: config.probe,
  lockTimeout: Option.fromNullable(config.lockTimeout),
  reserved: new Set<Ipv4>()
})

const configureAll = (config: SandboxConfig) =>
  Effect.gen(function*() {
    const bridges = yield* Effect.forEach(config.interfaces, (request, slot) =>
      configureBridge(request, slot, Option.fromNullable(config.defaultGateway)))
    const gateway = yield* chooseGateway(bridges, Option.fromNullable(config.defaultGateway))
    return { bridges, gateway, warnings: bridges.flatMap((b) => b.warnings) }
  })

/** The dry run: the addresses are chosen (and leased for the moment of choosing) but nothing is created. */
export const plan = Effect.fn("Sandbox.plan")(function*(config: SandboxConfig) {
  yield* checkConfig(config)
  const { bridges, gateway, warnings } = yield* configureAll(config)
  const addresses = yield* Effect.scoped(chooseAddresses(bridges, gateway, allocationOf(config)))
  return { bridges, gateway, addresses, warnings } satisfies SandboxPlan
})

export const run = Effect.fn("Sandbox.run")(function*(config: SandboxConfig) {
  yield* checkConfig(config)
  const timings: Array<PhaseTiming> = []
  const timed = stopwatch(timings)
  const allocation = allocationOf(config)

  const { bridges, gateway, warnings } = yield* timed("configureBridge", configureAll(config))
  const chosen = yield* timed("chooseSandboxIp", chooseAddresses(bridges, gateway, allocation))
  const namespace = yield* timed("clone", clone)

  const interfaces: Array<SandboxInterface> = []
  yield* timed(
    "interfaces",
    Effect.forEach(bridges, (bridge, i) =>
      Effect.gen(function*() {
        const hostName = bridge.wiring === "veth" ? Option.some(yield* hostVethName(bridge)) : Option.none<string>()
        const { address, mac } = Option.isSome(hostName)
          ? { address: chosen[i]!, mac: yield* vethPair(bridge, namespace, hostName.value, chosen[i]!) }
          : yield* childLink(bridge, namespace, gateway, allocation)
        Option.map(address, (a) => allocation.reserved.add(a.address))
        interfaces.push({
          name: sandboxName(bridge.slot),
          device: bridge.device.name,
          wiring: bridge.wiring,
          hostName,
          address,
          mac,
          mtu: bridge.mtu
        })
      }), { discard: true })
  )
  const routeWarning = yield* installDefaultRoute(
    namespace,
    gateway,
    interfaces.flatMap((i) => Option.toArray(i.address))
  )

  // The host cannot reach its own macvlan children, so only bridged addresses are awaited.
  yield* timed(
    "waitForIp",
    Effect.forEach(bridges, (bridge, i) =>
      Option.match(interfaces[i]!.address, {
        onNone: () => Effect.void,
        onSome: (a) => (bridge.wiring === "veth" ? waitForIp(bridge, a.address, config.answerTimeout) : Effect.void)
      }), { discard: true })
  )
  yield* activateLeases(namespace, interfaces)

  return {
    namespace,
    interfaces,
    gateway,
    warnings: [...warnings, ...Option.toArray(routeWarning)],
    timings
  } satisfies RunningSandbox
})

/** The sandbox is up: its leases say so, and say where it lives, for `netjail list` and for clean-up after a crash. */
const activateLeases = (namespace: SandboxNamespace, interfaces: ReadonlyArray<SandboxInterface>) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    for (const i of interfaces) {
      if (Option.isNone(i.address)) continue
      const segment = yield* registry.segmentOf(i.device)
      yield* registry.activate(segment, i.address.value.address, {
        device: i.device,
        namespace: namespace.id,
        interface: i.name,
        ...(Option.isSome(i.hostName) ? { hostVeth: i.hostName.value } : {})
      })
    }
  })

/** The running sandbox, for embedders: `Sandbox.layer(config)` builds it, `yield* Sandbox` reads it. */
export class Sandbox extends Context.Tag("netjail/Sandbox")<Sandbox, RunningSandbox>() {
  static readonly run = run
  static readonly plan = plan
  static readonly layer = (config: SandboxConfig) => Layer.scoped(Sandbox, run(config))
}
