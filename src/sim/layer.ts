/**
 * The simulated layer: the four services over one world, plus the world
 * itself as a service so tests can inspect it and inject faults.
 */
import { Effect, Layer, Option, Ref } from "effect"
import { Arp } from "../services/Arp.js"
import { HostLock } from "../services/HostLock.js"
import { Links } from "../services/Links.js"
import { Namespaces } from "../services/Namespaces.js"
import { makeArp } from "./arp.js"
import { makeLinks } from "./links.js"
import { makeHostLock } from "./lock.js"
import { makeNamespaces } from "./namespaces.js"
import { type Fault, makeWorld, SimWorld, type World, type WorldSpec } from "./world.js"

/** All four services over an existing world Ref (several layers can share one world). */
export const servicesFor = (world: Ref.Ref<World>) =>
  Layer.mergeAll(
    Layer.succeed(Links, makeLinks(world)),
    Layer.succeed(Arp, makeArp(world)),
    Layer.succeed(Namespaces, makeNamespaces(world)),
    Layer.succeed(HostLock, makeHostLock(world)),
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
