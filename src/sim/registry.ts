/**
 * The simulated lease registry: leases in the world, owned by simulated
 * netjail processes that can die (a test marks them dead) so that pruning
 * and crash recovery are property-tested like the rest.
 */
import { Effect, Option, Ref } from "effect"
import { AddressInUse } from "../domain/errors.js"
import * as Ipv4 from "../domain/Ipv4.js"
import type { Lease, LeaseOwner, RegistryService } from "../services/Registry.js"
import type { World } from "./world.js"

const ownerFor = (pid: number): LeaseOwner => ({ pid, startTime: "0" })

export const makeRegistry = (world: Ref.Ref<World>, pid: number): RegistryService => {
  const owner = ownerFor(pid)
  const same = (segment: string, address: Ipv4.Ipv4) => (l: Lease) => l.segment === segment && l.address === address
  return {
    segmentOf: (device) => Effect.succeed(device),

    prune: Ref.modify(world, (w) => {
      const dead = new Set(w.deadOwners)
      const pruned = w.leases.filter((l) => dead.has(l.owner.pid))
      const problems = Array.from({ length: w.corruptLeases }, (_, i) => `ignored an unreadable lease entry (#${i + 1}); removed it`)
      return [{ pruned, problems }, { ...w, corruptLeases: 0, leases: w.leases.filter((l) => !dead.has(l.owner.pid)) }] as const
    }),

    leased: (segment) =>
      Effect.map(Ref.get(world), (w) => new Map(w.leases.filter((l) => l.segment === segment).map((l) => [l.address, l.state]))),

    take: (segment, address, details) =>
      Effect.acquireRelease(
        Ref.modify(world, (w) =>
          w.leases.some(same(segment, address))
            ? [Option.some(new AddressInUse({ address })), w] as const
            : [Option.none(), { ...w, leases: [...w.leases, { ...details, segment, address, state: "probing" as const, owner }] }] as const
        ).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: Effect.fail }))),
        () =>
          Ref.update(world, (w) => ({
            ...w,
            leases: w.leases.filter((l) => !(same(segment, address)(l) && l.owner.pid === pid))
          }))
      ),

    activate: (segment, address, details) =>
      Ref.update(world, (w) => ({
        ...w,
        leases: w.leases.map((l) =>
          same(segment, address)(l) && l.owner.pid === pid ? { ...l, ...details, state: "active" as const } : l
        )
      })),

    list: Effect.map(Ref.get(world), (w) => ({ leases: w.leases, problems: [] }))
  }
}
