/** The simulated Links service: link tables with the kernel's checks and errors. */
import { Effect, Option, Ref } from "effect"
import { errno } from "../domain/errno.js"
import { DeviceNotFound, IpvlanUnsupported, type KernelError } from "../domain/errors.js"
import * as Subnet from "../domain/Subnet.js"
import type { Device, LinksService } from "../services/Links.js"
import { kernelError, mutation } from "./kernel.js"
import { findLink, HOST, macFor, type SimLink, type World } from "./world.js"

const MAX_IFNAME = 15

/** The checks the kernel makes before it creates a link named `name` in `namespace`. */
const checkNewName = (w: World, namespace: string, name: string, operation: string) => {
  if (name.length > MAX_IFNAME) return Option.some(kernelError(operation, errno.ERANGE, "Attribute failed policy validation"))
  if (Option.isSome(findLink(w, namespace, name))) return Option.some(kernelError(operation, errno.EEXIST))
  if (!w.namespaces.includes(namespace)) return Option.some(kernelError(operation, errno.EBADF))
  return Option.none()
}

const update = (w: World, link: SimLink, change: Partial<SimLink>): World => ({
  ...w,
  links: w.links.map((l) => (l.index === link.index ? { ...l, ...change } : l))
})

/** Runs a change of the world that may fail with a kernel error, atomically. */
const change = <E>(world: Ref.Ref<World>, f: (w: World) => readonly [Option.Option<E>, World]) =>
  Ref.modify(world, (w) => {
    const [error, next] = f(w)
    return [error, Option.isSome(error) ? w : next] as const
  }).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: (e: E) => Effect.fail(e) })))

export const makeLinks = (world: Ref.Ref<World>): LinksService => ({
  readDevice: (name) =>
    Effect.flatMap(Ref.get(world), (w) =>
      Option.match(findLink(w, HOST, name), {
        onNone: () => Effect.fail(new DeviceNotFound({ device: name })),
        onSome: (link): Effect.Effect<Device> =>
          Effect.succeed({
            name: link.name,
            index: link.index,
            kind: link.kind === "bridge" ? "bridge" : link.kind === "wireless" ? "wireless" : "ethernet",
            mac: link.mac,
            mtu: link.mtu,
            addresses: link.addresses
          })
      })),

  hostGateway: Effect.map(Ref.get(world), (w) => w.hostGateway),

  createVethPair: (spec) => {
    const operation = `create veth pair ${spec.hostName} on ${spec.bridge.name}`
    return Effect.zipRight(
      mutation(world, operation),
      change(world, (w) => {
        const error = Option.orElse(
          checkNewName(w, HOST, spec.hostName, operation),
          () => checkNewName(w, spec.namespace.id, spec.sandboxName, operation)
        )
        const bridge = w.links.find((l) => l.index === spec.bridge.index && l.namespace === HOST)
        if (Option.isNone(error) && !bridge) return [Option.some(kernelError(operation, errno.ENODEV)), w]
        const host = w.nextIndex
        const inner = w.nextIndex + 1
        return [error, {
          ...w,
          nextIndex: w.nextIndex + 2,
          links: [
            ...w.links,
            { index: host, name: spec.hostName, namespace: HOST, kind: "veth", mac: macFor(host), mtu: 1500, up: true, addresses: [], master: spec.bridge.index, peer: inner },
            { index: inner, name: spec.sandboxName, namespace: spec.namespace.id, kind: "veth", mac: spec.mac ?? macFor(inner), mtu: spec.mtu ?? 1500, up: false, addresses: [], peer: host }
          ]
        }]
      })
    )
  },

  createChildLink: (spec) => {
    const operation = `create ${spec.kind} ${spec.sandboxName} on ${spec.parent.name}`
    return Effect.zipRight(
      mutation(world, operation),
      change(world, (w) => {
        if (spec.kind === "ipvlan" && !w.ipvlanSupported) {
          return [Option.some<IpvlanUnsupported | KernelError>(new IpvlanUnsupported({ device: spec.parent.name })), w]
        }
        const error = checkNewName(w, spec.namespace.id, spec.sandboxName, operation)
        if (Option.isNone(error) && !w.links.some((l) => l.index === spec.parent.index)) {
          return [Option.some(kernelError(operation, errno.ENODEV)), w]
        }
        const index = w.nextIndex
        const parentMac = w.links.find((l) => l.index === spec.parent.index)?.mac
        return [error, {
          ...w,
          nextIndex: index + 1,
          links: [...w.links, {
            index,
            name: spec.sandboxName,
            namespace: spec.namespace.id,
            kind: spec.kind,
            // an ipvlan shares its parent's MAC; a macvlan gets its own
            mac: spec.kind === "ipvlan" && parentMac ? parentMac : spec.mac ?? macFor(index),
            mtu: spec.mtu ?? spec.parent.mtu,
            up: false,
            addresses: [],
            parent: spec.parent.index
          }]
        }]
      })
    )
  },

  setUp: (namespace, setup) => {
    const operation = `configure ${setup.name}`
    return mutation(world, operation).pipe(
      Effect.zipRight(change(world, (w): readonly [Option.Option<KernelError>, World] =>
        Option.match(findLink(w, namespace.id, setup.name), {
          onNone: () => [Option.some(kernelError(operation, errno.ENODEV)), w] as const,
          onSome: (link) =>
            Option.match(setup.address, {
              onNone: () => [Option.none(), update(w, link, { up: true })] as const,
              onSome: (cidr) =>
                link.addresses.some((a) => a.address === cidr.address)
                  ? [Option.some(kernelError(operation, errno.EEXIST, "ipv4: Address already assigned")), w] as const
                  : [Option.none(), update(w, link, { up: true, addresses: [...link.addresses, cidr] })] as const
            })
        }))),
      Effect.zipRight(Ref.get(world)),
      Effect.map((w) => Option.getOrThrow(findLink(w, namespace.id, setup.name)).mac)
    )
  },

  addDefaultRoute: (namespace, gateway) => {
    const operation = "add default route"
    return Effect.zipRight(
      mutation(world, operation),
      change(world, (w) => {
        const reachable = w.links.some((l) =>
          l.namespace === namespace.id && l.up && l.addresses.some((a) => Subnet.contains(a, gateway))
        )
        if (!reachable) return [Option.some(kernelError(operation, errno.ENETUNREACH, "Nexthop has invalid gateway")), w]
        if (w.routes.some((r) => r.namespace === namespace.id)) return [Option.some(kernelError(operation, errno.EEXIST)), w]
        return [Option.none(), { ...w, routes: [...w.routes, { namespace: namespace.id, gateway }] }]
      })
    )
  },

  deleteHostLink: (name) =>
    Ref.update(world, (w) => {
      const link = w.links.find((l) => l.namespace === HOST && l.name === name)
      if (!link) return w
      // deleting one end of a veth pair deletes the other
      return { ...w, links: w.links.filter((l) => l.index !== link.index && l.index !== link.peer) }
    })
})
