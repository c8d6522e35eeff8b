/**
 * The simulated layer: the four services over one world, plus the world
 * itself as a service so tests can inspect it and inject faults.
 */
import { Effect, Layer, Option, Ref } from "effect"
import { Arp } from "../services/Arp.js"
import { HostLock } from "../services/HostLock.js"
import { Links } from "../services/Links.js"
import { Namespaces } from "../services/Namespaces.js"
import { Registry } from "../services/Registry.js"
import { makeArp } from "./arp.js"
import { makeLinks } from "./links.js"
import { makeHostLock } from "./lock.js"
import { destroy, makeNamespaces } from "./namespaces.js"
import { makeRegistry } from "./registry.js"
import { type Fault, makeWorld, SimWorld, type World, type WorldSpec } from "./world.js"

/**
 * The services over an existing world Ref. Several layers can share one
 * world; `pid` names the simulated netjail process that owns their leases.
 */
export const servicesFor = (world: Ref.Ref<World>, options: { readonly pid?: number } = {}) =>
  Layer.mergeAll(
    Layer.succeed(Links, makeLinks(world)),
    Layer.succeed(Arp, makeArp(world)),
    Layer.succeed(Namespaces, makeNamespaces(world)),
    Layer.succeed(HostLock, makeHostLock(world)),
    Layer.succeed(Registry, makeRegistry(world, options.pid ?? 1)),
    Layer.succeed(SimWorld, world)
  )

/** A fresh world built from the spec, and the services over it. */
export const layerSim = (spec: WorldSpec = {}) =>
  Layer.unwrapEffect(Effect.map(Ref.make(makeWorld(spec)), servicesFor))

/** Fail the n-th mutating kernel call from now on with this errno. */
export const injectFault = (fault: Fault) =>
  Effect.flatMap(SimWorld, (world) =>
    Ref.update(world, (w) => ({ ...w, fault: Option.some({ at: w.mutations + fault.at, errno: fault.errno }) })))

export const clearFault = Effect.flatMap(SimWorld, (world) => Ref.update(world, (w) => ({ ...w, fault: Option.none() })))

export const currentWorld = Effect.flatMap(SimWorld, Ref.get)

/**
 * A netjail process dies without running its finalizers (SIGKILL): the kernel
 * reclaims the namespaces it held, and with them their veth pairs; its leases
 * stay in the registry, stale, until the next start prunes them.
 */
export const crashOwner = (pid: number, namespaces: ReadonlyArray<string>) =>
  Effect.flatMap(SimWorld, (world) =>
    Ref.update(world, (w) => ({ ...namespaces.reduce(destroy, w), deadOwners: [...w.deadOwners, pid], lockHeld: false })))

/** Damages lease entries, as a disk error or a stray editor would. */
export const corruptLeases = (count: number) =>
  Effect.flatMap(SimWorld, (world) => Ref.update(world, (w) => ({ ...w, corruptLeases: w.corruptLeases + count })))
