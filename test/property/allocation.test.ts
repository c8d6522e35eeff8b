/**
 * Address choice on the simulated network: the allocation invariants hold for
 * any subnet, any occupancy and any (bounded) ARP misbehaviour.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Option } from "effect"
import { makeConfig } from "../../src/domain/Config.js"
import * as Ipv4 from "../../src/domain/Ipv4.js"
import * as Subnet from "../../src/domain/Subnet.js"
import { Sandbox } from "../../src/pipeline/Sandbox.js"
import { Arbitraries, layerSim } from "../../src/testing.js"
import { failureTag, settle } from "./clock.js"

const numRuns = 200
const planFor = (segment: Arbitraries.Segment, interfaceSpec: Record<string, unknown> = {}) =>
  Sandbox.plan(makeConfig({ interfaces: [{ device: "br0", ...interfaceSpec }] })).pipe(
    Effect.map((plan) => Option.getOrThrow(plan.addresses[0]!)),
    Effect.provide(layerSim(Arbitraries.worldOf(segment))),
    settle
  )

const occupied = (segment: Arbitraries.Segment) => new Set(segment.hosts.map((h) => h.address))
const freeAddresses = (segment: Arbitraries.Segment) =>
  Arbitraries.hostAddresses(segment.bridge).filter((ip) => !occupied(segment).has(ip))

describe("automatic address choice", () => {
  it.effect.prop(
    "never an occupied, network, broadcast or bridge address; finds one whenever one is free",
    [Arbitraries.segment()],
    ([segment]) =>
      Effect.gen(function*() {
        const exit = yield* planFor(segment)
        if (freeAddresses(segment).length === 0) {
          expect(failureTag(exit)).toBe("NoFreeAddress")
          return
        }
        expect(Exit.isSuccess(exit)).toBe(true)
        const chosen = Exit.isSuccess(exit) ? exit.value : undefined
        expect(chosen!.prefix).toBe(segment.bridge.prefix)
        expect(Subnet.isHost(segment.bridge, chosen!.address)).toBe(true)
        expect(chosen!.address).not.toBe(segment.bridge.address)
        expect(occupied(segment).has(chosen!.address)).toBe(false)
      }),
    { fastCheck: { numRuns } }
  )

  it.effect.prop(
    "fails with firejail's message exactly when every address is taken",
    [Arbitraries.bridgeCidr({ min: 26, max: 30 })],
    ([bridge]) =>
      Effect.gen(function*() {
        const full: Arbitraries.Segment = {
          bridge,
          hosts: Arbitraries.hostAddresses(bridge).map((address) => ({ address, latency: 1, drops: 0, joinsAt: 0, probing: false }))
        }
        const exit = yield* planFor(full)
        expect(failureTag(exit)).toBe("NoFreeAddress")
        expect(Exit.isFailure(exit) && String(exit.cause)).toContain("cannot assign an IP address; it looks like all of them are in use.")
      }),
    { fastCheck: { numRuns: 50 } }
  )

  it.effect.prop(
    "stays inside --iprange",
    [Arbitraries.segment({ prefixes: { min: 24, max: 28 } }), fc.nat(), fc.nat()],
    ([segment, a, b]) =>
      Effect.gen(function*() {
        const hosts = Arbitraries.hostAddresses(segment.bridge)
        const all = [Subnet.firstHost(segment.bridge), Subnet.lastHost(segment.bridge)]
        const [start, end] = [all[0]! + (a % (hosts.length - 1)), all[0]! + (b % (hosts.length - 1))].sort((x, y) => x - y)
        if (start === end) return
        const exit = yield* planFor(segment, { iprange: { start: Ipv4.format(start as Ipv4.Ipv4), end: Ipv4.format(end as Ipv4.Ipv4) } })
        const inRange = freeAddresses(segment).filter((ip) => ip >= start! && ip <= end!)
        if (inRange.length === 0) {
          expect(failureTag(exit)).toBe("NoFreeAddress")
          return
        }
        expect(Exit.isSuccess(exit)).toBe(true)
        const chosen = Exit.isSuccess(exit) ? exit.value.address : 0
        expect(chosen >= start! && chosen <= end!).toBe(true)
        expect(occupied(segment).has(chosen as Ipv4.Ipv4)).toBe(false)
      }),
    { fastCheck: { numRuns } }
  )

  it.effect("a dropped first reply is still caught by the second probe", () =>
    Effect.gen(function*() {
      // every address but .5 is held; .5's holder loses the first request and answers late on the second
      const bridge = Subnet.make(Ipv4.fromOctets([10, 10, 20, 1]), 29)
      const hosts = Arbitraries.hostAddresses(bridge).map((address) => ({
        address,
        latency: address === Ipv4.fromOctets([10, 10, 20, 5]) ? 480 : 1,
        drops: address === Ipv4.fromOctets([10, 10, 20, 5]) ? 1 : 0,
        joinsAt: 0,
        probing: false
      }))
      expect(failureTag(yield* planFor({ bridge, hosts }))).toBe("NoFreeAddress")
    }))

  it.effect("another host probing for the same address in the window counts as a conflict (RFC 5227)", () =>
    Effect.gen(function*() {
      const bridge = Subnet.make(Ipv4.fromOctets([10, 10, 20, 1]), 30)
      const hosts = [{ address: Ipv4.fromOctets([10, 10, 20, 2]), latency: 0, drops: 0, joinsAt: 0, probing: true }]
      expect(failureTag(yield* planFor({ bridge, hosts }))).toBe("NoFreeAddress")
    }))
})

describe("static addresses", () => {
  it.effect.prop(
    "are accepted exactly when they are free hosts of the subnet, with firejail's messages otherwise",
    [Arbitraries.segment({ prefixes: { min: 26, max: 30 } }), fc.integer({ min: -4, max: 70 })],
    ([segment, offset]) =>
      Effect.gen(function*() {
        const address = (Subnet.network(segment.bridge) + offset) >>> 0 as Ipv4.Ipv4
        const exit = yield* planFor(segment, { address: { _tag: "Static", address: Ipv4.format(address) } })
        const expected = !Subnet.contains(segment.bridge, address)
          ? "AddressOutsideSubnet"
          : !Subnet.isHost(segment.bridge, address)
          ? "NetworkAddress"
          : address === segment.bridge.address
          ? "AddressIsInterface"
          : occupied(segment).has(address)
          ? "AddressInUse"
          : undefined
        expect(failureTag(exit)).toBe(expected)
      }),
    { fastCheck: { numRuns } }
  )
})

describe("timing under TestClock", () => {
  it.effect("a full subnet is refused without waiting out windows whose verdict is already in", () =>
    Effect.gen(function*() {
      const bridge = Subnet.make(Ipv4.fromOctets([10, 10, 20, 1]), 27)
      const hosts = Arbitraries.hostAddresses(bridge).map((address) => ({ address, latency: 0, drops: 0, joinsAt: 0, probing: false }))
      const started = yield* Effect.clockWith((c) => c.currentTimeMillis)
      expect(failureTag(yield* planFor({ bridge, hosts }))).toBe("NoFreeAddress")
      expect((yield* Effect.clockWith((c) => c.currentTimeMillis)) - started).toBe(0)
    }))

  it.effect("a probe lasts probes × --arp-timeout, every window read to its end", () =>
    Effect.gen(function*() {
      const world = layerSim({ devices: [{ name: "br0", address: "10.10.20.1/24" }] })
      const config = makeConfig({
        interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.10.20.9" } }],
        probe: { probes: 3, window: 300 }
      })
      const started = yield* Effect.clockWith((c) => c.currentTimeMillis)
      const exit = yield* settle(Sandbox.plan(config).pipe(Effect.provide(world)))
      const ended = yield* Effect.clockWith((c) => c.currentTimeMillis)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(ended - started).toBe(900)
    }))
})
