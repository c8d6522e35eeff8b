/**
 * The simulated Arp service: hosts on a segment answer probes after their
 * latency, may drop the first requests, join late, leave, or probe the same
 * address; sandbox interfaces answer for their addresses. Time is Effect's
 * Clock, so a probe window costs nothing under TestClock.
 */
import { Clock, Duration, Effect, Option, Ref } from "effect"
import { errno } from "../domain/errno.js"
import type { Ipv4 } from "../domain/Ipv4.js"
import type { Mac } from "../domain/Mac.js"
import type { ArpEndpoint, ArpService, Claim } from "../services/Arp.js"
import { kernelError } from "./kernel.js"
import { findLink, HOST, segmentOf, type SimHost, type SimLink, type World } from "./world.js"

const locate = (w: World, endpoint: ArpEndpoint, operation: string) =>
  Option.match(findLink(w, endpoint.namespace?.id ?? HOST, endpoint.device), {
    onNone: () => Effect.fail(kernelError(operation, errno.ENODEV)),
    onSome: (link) => link.up ? Effect.succeed(link) : Effect.fail(kernelError(operation, errno.ENETDOWN))
  })

/** Interfaces on the segment (the host device itself, sandbox ends) by the addresses they own. */
const ownersOn = (w: World, segment: string, self: SimLink): Map<Ipv4, Mac> => {
  const owners = new Map<Ipv4, Mac>()
  for (const l of w.links) {
    if (l.index === self.index || !l.up || l.kind === "loopback" || l.addresses.length === 0) continue
    // a macvlan or ipvlan child never hears its own parent device, as on the kernel
    if (l.index === self.parent) continue
    if (segmentOf(w, l) !== segment) continue
    for (const a of l.addresses) owners.set(a.address, l.mac)
  }
  return owners
}

const hostsOn = (w: World, segment: string): Map<Ipv4, Array<SimHost>> => {
  const byAddress = new Map<Ipv4, Array<SimHost>>()
  for (const h of w.hosts) {
    if (h.segment !== segment) continue
    byAddress.set(h.address, [...(byAddress.get(h.address) ?? []), h])
  }
  return byAddress
}

const present = (joinsAt: number, leavesAt: number | undefined, at: number) =>
  joinsAt <= at && (leavesAt === undefined || leavesAt > at)

export const makeArp = (world: Ref.Ref<World>): ArpService => ({
  probe: ({ endpoint, probes, targets, window }) =>
    Effect.gen(function*() {
      const windowMs = Duration.toMillis(window)
      const claims = new Map<Ipv4, Claim>()
      for (let round = 0; round < probes; round++) {
        const sentAt = yield* Clock.currentTimeMillis
        // like the kernel layer, later rounds ask only for the targets nobody has claimed yet
        const open = targets.filter((t) => !claims.has(t)).length
        const w = yield* Ref.updateAndGet(world, (w) => ({ ...w, probesSent: w.probesSent + open }))
        const self = yield* locate(w, endpoint, `probe on ${endpoint.device}`)
        const segment = segmentOf(w, self)
        const owners = ownersOn(w, segment, self)
        const hosts = hostsOn(w, segment)
        for (const target of targets) {
          if (claims.has(target)) continue
          const owner = owners.get(target)
          if (owner !== undefined) {
            claims.set(target, { mac: owner, by: "reply" })
            continue
          }
          for (const host of hosts.get(target) ?? []) {
            if (host.probing) {
              // a competing prober is seen whenever it is on the segment during the window
              if (present(host.joinsAt, host.leavesAt, sentAt + windowMs)) claims.set(target, { mac: host.mac, by: "probe" })
            } else if (round >= host.drops && host.latency < windowMs && present(host.joinsAt, host.leavesAt, sentAt)) {
              claims.set(target, { mac: host.mac, by: "reply" })
            }
            if (claims.has(target)) break
          }
        }
        // every window is read to its end while a target may still turn out free
        if (claims.size === new Set(targets).size) break
        yield* Effect.sleep(window)
      }
      return claims as ReadonlyMap<Ipv4, Claim>
    }),

  awaitAnswer: (endpoint, target, timeout) =>
    Effect.gen(function*() {
      const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timeout)
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        const w = yield* Ref.get(world)
        const self = yield* locate(w, endpoint, `ask for ${target} on ${endpoint.device}`)
        const segment = segmentOf(w, self)
        const host = w.hosts.find((h) =>
          h.segment === segment && h.address === target && !h.probing && present(h.joinsAt, h.leavesAt, now)
        )
        if (ownersOn(w, segment, self).has(target)) return true
        if (host && now + host.latency <= deadline) {
          yield* Effect.sleep(Duration.millis(host.latency))
          return true
        }
        if (now >= deadline) return false
        yield* Effect.sleep(Duration.millis(Math.min(100, deadline - now)))
      }
    }),

  announce: (endpoint) => Effect.flatMap(Ref.get(world), (w) => Effect.asVoid(locate(w, endpoint, "announce")))
})
