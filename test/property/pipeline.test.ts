/**
 * The whole pipeline on the simulated network: whatever fails, whenever it is
 * interrupted, nothing the run created is left; concurrent runs get distinct addresses.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, FastCheck as fc, Fiber, Layer, Option, Ref, Scope, TestClock } from "effect"
import { makeConfig, type SandboxConfig } from "../../src/domain/Config.js"
import { KernelError } from "../../src/domain/errors.js"
import * as Ipv4 from "../../src/domain/Ipv4.js"
import * as Subnet from "../../src/domain/Subnet.js"
import { Sandbox } from "../../src/pipeline/Sandbox.js"
import { HostLock } from "../../src/services/HostLock.js"
import { waitForIp } from "../../src/pipeline/waitForIp.js"
import { Arbitraries, injectFault, isClean, layerSim, leftovers, makeWorld, servicesFor, SimWorld, type WorldSpec } from "../../src/testing.js"
import { failure, failureTag, settle } from "./clock.js"

const lab: WorldSpec = {
  devices: [
    { name: "br0", kind: "bridge", address: "10.10.20.1/24" },
    { name: "br1", kind: "bridge", address: "192.168.7.1/28" },
    { name: "eth1", kind: "ethernet", address: "198.18.0.10/24" }
  ],
  hosts: [
    { segment: "br0", address: "10.10.20.2" },
    { segment: "br0", address: "10.10.20.3", latency: 200 },
    { segment: "eth1", address: "198.18.0.1" }
  ],
  hostGateway: "198.18.0.1"
}

/** Configurations a user could give on that lab: one to four interfaces of every kind and mode. */
const configs = fc.array(
  fc.record({
    device: fc.constantFrom("br0", "br1", "eth1"),
    address: fc.constantFrom<Record<string, unknown>>(
      { _tag: "Auto" },
      { _tag: "None" },
      { _tag: "Static", address: "10.10.20.77" },
      { _tag: "Static", address: "192.168.7.9" },
      { _tag: "Static", address: "198.18.0.50" }
    ),
    mtu: fc.option(fc.integer({ min: 576, max: 9198 }), { nil: undefined }),
    ipvlan: fc.boolean()
  }),
  { minLength: 0, maxLength: 4 }
).map((interfaces) => makeConfig({ interfaces: interfaces.map((i) => JSON.parse(JSON.stringify(i))) }))

/** Runs one sandbox in its own scope on the world and closes it; returns the exit and what was left. */
const runOnce = (config: SandboxConfig, before?: Effect.Effect<void, never, SimWorld>) =>
  Effect.gen(function*() {
    const world = yield* SimWorld
    const initial = yield* Ref.get(world)
    if (before) yield* before
    const exit = yield* settle(Effect.scoped(Sandbox.run(config)))
    return { exit, left: leftovers(initial, yield* Ref.get(world)) }
  })

describe("faults", () => {
  it.effect.prop(
    "a failure at any mutating step fails the run with that error and leaves nothing",
    [configs, Arbitraries.faultPlan(14)],
    ([config, fault]) =>
      Effect.gen(function*() {
        // how many mutating calls a clean run makes
        const clean = yield* runOnce(config)
        const world = yield* SimWorld
        const { mutations } = yield* Ref.get(world)
        const { exit, left } = yield* runOnce(config, injectFault(fault))
        expect(isClean(left)).toBe(true)
        if (Exit.isFailure(clean.exit)) return
        const made = mutations
        if (fault.at <= made) {
          const error = failure(exit)
          expect(error).toBeInstanceOf(KernelError)
          expect((error as KernelError).errno).toBe(fault.errno)
        } else {
          expect(Exit.isSuccess(exit)).toBe(true)
        }
      }).pipe(Effect.provide(layerSim(lab))),
    { fastCheck: { numRuns: 150 } }
  )
})

describe("interruption", () => {
  it.effect.prop(
    "interrupting the run at any point leaves nothing behind",
    [configs, fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 30 })],
    ([config, at, yields]) =>
      Effect.gen(function*() {
        const world = yield* SimWorld
        const initial = yield* Ref.get(world)
        const fiber = yield* Effect.fork(Effect.scoped(Sandbox.run(config)))
        for (let i = 0; i < yields; i++) yield* Effect.yieldNow()
        yield* TestClock.adjust(Duration.millis(at))
        yield* Fiber.interrupt(fiber)
        expect(isClean(leftovers(initial, yield* Ref.get(world)))).toBe(true)
      }).pipe(Effect.provide(layerSim(lab))),
    { fastCheck: { numRuns: 150 } }
  )
})

describe("concurrency", () => {
  it.effect.prop(
    "N runs started at once on one world all succeed with distinct free addresses",
    [Arbitraries.segment({ prefixes: { min: 26, max: 28 } }), fc.integer({ min: 1, max: 12 })],
    ([segment, n]) =>
      Effect.gen(function*() {
        const free = Arbitraries.hostAddresses(segment.bridge).filter((ip) => !segment.hosts.some((h) => h.address === ip))
        const count = Math.min(n, free.length)
        const world = yield* Ref.make(makeWorld(Arbitraries.worldOf(segment)))
        const scope = yield* Scope.make()
        const config = makeConfig({ interfaces: [{ device: "br0" }] })
        const exit = yield* settle(
          Effect.all(Array.from({ length: count }, () => Sandbox.run(config)), { concurrency: "unbounded" }).pipe(
            Scope.extend(scope),
            Effect.provide(servicesFor(world))
          )
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        const addresses = Exit.isSuccess(exit) ? exit.value.map((s) => Option.getOrThrow(s.interfaces[0]!.address).address) : []
        expect(new Set(addresses).size).toBe(count)
        for (const address of addresses) {
          expect(segment.hosts.some((h) => h.address === address)).toBe(false)
          expect(Subnet.isHost(segment.bridge, address) && address !== segment.bridge.address).toBe(true)
        }
        yield* Scope.close(scope, Exit.void)
        expect((yield* Ref.get(world)).links.filter((l) => l.kind === "veth")).toEqual([])
      }),
    { fastCheck: { numRuns: 60 } }
  )
})

describe("timeouts under TestClock", () => {
  it.effect("waitForIp fails at exactly --answer timeout (5 s)", () =>
    Effect.gen(function*() {
      const bridge = { slot: 0, device: { name: "br0" } } as Parameters<typeof waitForIp>[0]
      const fiber = yield* Effect.fork(waitForIp(bridge, Ipv4.fromOctets([10, 10, 20, 99]), Duration.seconds(5)))
      yield* TestClock.adjust(Duration.millis(4999))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      const exit = yield* Fiber.await(fiber)
      expect(failureTag(exit)).toBe("AddressNotAnswering")
    }).pipe(Effect.provide(layerSim(lab))))

  it.effect("the lock wait times out at exactly --lock-timeout", () =>
    Effect.gen(function*() {
      // another start holds the lock and keeps it
      yield* Effect.forkScoped(Effect.scoped(Effect.zipRight((yield* HostLock).acquire(Option.none()), Effect.never)))
      yield* Effect.yieldNow()
      const config = makeConfig({ interfaces: [{ device: "br0" }], lockTimeout: 2000 })
      const fiber = yield* Effect.fork(Effect.scoped(Sandbox.run(config)))
      yield* TestClock.adjust(Duration.millis(1999))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      const exit = yield* Fiber.await(fiber)
      expect(failureTag(exit)).toBe("LockTimeout")
      expect(String(failure(exit)?.message)).toContain("timeout occurred while trying to lock")
    }).pipe(Effect.scoped, Effect.provide(layerSim(lab))))
})

describe("device checks", () => {
  const failsWith = (spec: WorldSpec, config: Parameters<typeof makeConfig>[0], tag: string, message: string) =>
    Effect.gen(function*() {
      const exit = yield* settle(Effect.scoped(Sandbox.run(makeConfig(config))).pipe(Effect.provide(layerSim(spec))))
      expect(failureTag(exit)).toBe(tag)
      expect(failure(exit as Exit.Exit<unknown, Error>)?.message).toContain(message)
    })

  it.effect("gives firejail's messages for what only the device can tell", () =>
    Effect.gen(function*() {
      yield* failsWith(lab, { interfaces: [{ device: "br9" }] }, "DeviceNotFound", "cannot find network device br9")
      yield* failsWith({ devices: [{ name: "br0", address: "10.0.0.1/31" }] }, { interfaces: [{ device: "br0" }] }, "SubnetTooSmall", "the software is not supported for /31 networks")
      yield* failsWith({ devices: [{ name: "br0", address: "10.0.0.1/32" }] }, { interfaces: [{ device: "br0" }] }, "SubnetTooSmall", "not supported for /31 networks")
      yield* failsWith(lab, { interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.10.50.5" } }] }, "AddressOutsideSubnet", "the IP address is not in the interface range")
      yield* failsWith(lab, { interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.10.20.255" } }] }, "NetworkAddress", "the IP address is a network address")
      yield* failsWith(lab, { interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.10.20.2" } }] }, "AddressInUse", "IP address 10.10.20.2 is already in use")
      yield* failsWith(lab, { interfaces: [{ device: "br0" }], defaultGateway: "10.110.210.2" }, "GatewayOutOfRange", "default gateway 10.110.210.2 is not in the range of any network")
      yield* failsWith(lab, { interfaces: [{ device: "br0", iprange: { start: "10.10.30.2", end: "10.10.30.9" } }] }, "IpRangeOutsideSubnet", "IP range addresses not in network range")
      const twoAddresses = { devices: [{ name: "eth1", kind: "ethernet" as const, address: "198.18.0.10/24", secondary: ["198.18.0.20/24"] }] }
      yield* failsWith(twoAddresses, { interfaces: [{ device: "eth1", address: { _tag: "Static", address: "198.18.0.20" } }] }, "AddressIsInterface", "198.18.0.20 is interface eth1 address")
      yield* failsWith(lab, { interfaces: [{ device: "eth1", mtu: 9000 }] }, "MtuAboveParent", "invalid mtu value: 9000 is above eth1's MTU 1500")
      yield* failsWith({ ...lab, ipvlanSupported: false }, { interfaces: [{ device: "eth1", ipvlan: true }] }, "IpvlanUnsupported", "ipvlan")
    }))

  it.effect("a device without IPv4 comes up without an address, with firejail's warning", () =>
    Effect.gen(function*() {
      const exit = yield* settle(Effect.scoped(Sandbox.run(makeConfig({ interfaces: [{ device: "br0" }] })).pipe(
        Effect.provide(layerSim({ devices: [{ name: "br0" }] }))
      )))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) {
        expect(Option.isNone(exit.value.interfaces[0]!.address)).toBe(true)
        expect(exit.value.warnings[0]).toContain("Not enough information to configure an IP address")
      }
    }))

  it.effect("--ip with --netmask configures a sandbox on a bridge without IPv4", () =>
    Effect.gen(function*() {
      const exit = yield* settle(Effect.scoped(Sandbox.run(makeConfig({
        interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.9.0.5" }, netmask: "255.255.255.0" }]
      })).pipe(Effect.provide(layerSim({ devices: [{ name: "br0" }] })))))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) expect(Option.map(exit.value.interfaces[0]!.address, Subnet.format)).toEqual(Option.some("10.9.0.5/24"))
    }))
})

describe("embedding", () => {
  it.scoped("the README's example: Sandbox.layer on the simulated network, released with its scope", () =>
    Effect.gen(function*() {
      const world = yield* Ref.make(makeWorld({ devices: [{ name: "br0", address: "10.10.20.1/24" }] }))
      const initial = yield* Ref.get(world)
      const config = makeConfig({ interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.10.20.5" } }] })
      const program = Effect.gen(function*() {
        const sandbox = yield* Sandbox
        return sandbox.interfaces.map((i) => Option.map(i.address, Subnet.format))
      })
      const addresses = yield* settle(
        program.pipe(Effect.provide(Sandbox.layer(config).pipe(Layer.provide(servicesFor(world)))))
      )
      expect(addresses).toEqual(Exit.succeed([Option.some("10.10.20.5/24")]))
      expect(isClean(leftovers(initial, yield* Ref.get(world)))).toBe(true)
    }))
})
