/**
 * Model-based: any interleaving of starts, stops, crashes of netjail itself,
 * hosts joining and leaving, and kernel faults. After every step the world
 * agrees with a simple model: no two live sandboxes share an address, none
 * holds a host's address, and no lease outlives its sandbox past the next start.
 */
import { Effect, Exit, FastCheck as fc, Option, Ref, Scope, TestContext } from "effect"
import { describe, expect, it } from "vitest"
import { makeConfig } from "../../src/domain/Config.js"
import * as Ipv4 from "../../src/domain/Ipv4.js"
import { Sandbox } from "../../src/pipeline/Sandbox.js"
import { clearFault, crashOwner, injectFault, makeWorld, servicesFor, SimWorld, type World } from "../../src/testing.js"
import { settle } from "./clock.js"

interface Live {
  readonly pid: number
  readonly address: Ipv4.Ipv4
  readonly namespace: string
  readonly scope: Scope.CloseableScope
}

interface Model {
  live: Array<Live>
  hosts: Set<Ipv4.Ipv4>
  crashed: Set<Ipv4.Ipv4>
  nextPid: number
  faulty: boolean
}

interface Real {
  readonly world: Ref.Ref<World>
}

const BRIDGE = "10.10.20.1/28" // 13 candidates: the bridge, network and broadcast are never handed out
const candidates = Array.from({ length: 14 }, (_, i) => Ipv4.fromOctets([10, 10, 20, i + 1])).filter((ip) => ip !== Ipv4.fromOctets([10, 10, 20, 1]))
const config = makeConfig({ interfaces: [{ device: "br0" }] })

const run = <A, E>(real: Real, effect: Effect.Effect<A, E, SimWorld>) =>
  Effect.runPromise(effect.pipe(Effect.provideService(SimWorld, real.world), Effect.provide(TestContext.TestContext)))

const check = async (model: Model, real: Real) => {
  const world = await Effect.runPromise(Ref.get(real.world))
  const addresses = model.live.map((l) => l.address)
  expect(new Set(addresses).size).toBe(addresses.length)
  for (const l of model.live) {
    expect(model.hosts.has(l.address)).toBe(false)
    const leases = world.leases.filter((x) => x.address === l.address)
    expect(leases.map((x) => [x.state, x.owner.pid])).toEqual([["active", l.pid]])
  }
  // every lease belongs to a live sandbox, or to a crashed one not yet pruned
  for (const lease of world.leases) {
    const live = model.live.some((l) => l.address === lease.address && l.pid === lease.owner.pid)
    expect(live || world.deadOwners.includes(lease.owner.pid)).toBe(true)
  }
  expect(world.lockHeld).toBe(false)
}

class Start implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(model: Model, real: Real) {
    const pid = model.nextPid++
    const scope = await Effect.runPromise(Scope.make())
    const exit = await run(real, settle(Scope.extend(Sandbox.run(config), scope).pipe(
      Effect.provide(servicesFor(real.world, { pid }))
    )))
    // the start pruned every crashed sandbox's lease
    const world = await Effect.runPromise(Ref.get(real.world))
    expect(world.leases.filter((l) => world.deadOwners.includes(l.owner.pid))).toEqual([])
    model.crashed.clear()
    const free = candidates.filter((ip) => !model.hosts.has(ip) && !model.live.some((l) => l.address === ip))
    if (Exit.isSuccess(exit)) {
      const address = Option.getOrThrow(exit.value.interfaces[0]!.address).address
      expect(free).toContain(address)
      model.live.push({ pid, address, namespace: exit.value.namespace.id, scope })
    } else {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      if (!model.faulty) expect(free).toEqual([])
    }
    await check(model, real)
  }
  toString = () => "start"
}

class Stop implements fc.AsyncCommand<Model, Real> {
  constructor(readonly which: number) {}
  check = (model: Readonly<Model>) => model.live.length > 0
  async run(model: Model, real: Real) {
    const [gone] = model.live.splice(this.which % model.live.length, 1)
    await Effect.runPromise(Scope.close(gone!.scope, Exit.void))
    await check(model, real)
  }
  toString = () => `stop(${this.which})`
}

class Crash implements fc.AsyncCommand<Model, Real> {
  constructor(readonly which: number) {}
  check = (model: Readonly<Model>) => model.live.length > 0
  async run(model: Model, real: Real) {
    const [gone] = model.live.splice(this.which % model.live.length, 1)
    // its scope is never closed: netjail was SIGKILLed
    await run(real, crashOwner(gone!.pid, [gone!.namespace]))
    model.crashed.add(gone!.address)
    await check(model, real)
  }
  toString = () => `crash(${this.which})`
}

class HostJoins implements fc.AsyncCommand<Model, Real> {
  constructor(readonly which: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    const free = candidates.filter((ip) => !model.hosts.has(ip) && !model.live.some((l) => l.address === ip))
    if (free.length === 0) return
    const address = free[this.which % free.length]!
    model.hosts.add(address)
    await Effect.runPromise(Ref.update(real.world, (w) => ({
      ...w,
      hosts: [...w.hosts, { segment: "br0", address, mac: w.links[0]!.mac, latency: 1, drops: 0, joinsAt: 0, probing: false }]
    })))
    await check(model, real)
  }
  toString = () => `hostJoins(${this.which})`
}

class HostLeaves implements fc.AsyncCommand<Model, Real> {
  constructor(readonly which: number) {}
  check = (model: Readonly<Model>) => model.hosts.size > 0
  async run(model: Model, real: Real) {
    const address = [...model.hosts][this.which % model.hosts.size]!
    model.hosts.delete(address)
    await Effect.runPromise(Ref.update(real.world, (w) => ({ ...w, hosts: w.hosts.filter((h) => h.address !== address) })))
    await check(model, real)
  }
  toString = () => `hostLeaves(${this.which})`
}

class Faults implements fc.AsyncCommand<Model, Real> {
  constructor(readonly on: boolean, readonly at: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.faulty = this.on
    await run(real, this.on ? injectFault({ at: this.at, errno: 16 }) : clearFault)
  }
  toString = () => `faults(${this.on}, ${this.at})`
}

const commands = [
  fc.constant(new Start()),
  fc.constant(new Start()),
  fc.nat().map((n) => new Stop(n)),
  fc.nat().map((n) => new Crash(n)),
  fc.nat().map((n) => new HostJoins(n)),
  fc.nat().map((n) => new HostLeaves(n)),
  fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 6 })).map(([on, at]) => new Faults(on, at))
]

describe("model-based", () => {
  it("starts, stops, crashes, hosts and faults in any order keep the world consistent", async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        const world = await Effect.runPromise(Ref.make(makeWorld({ devices: [{ name: "br0", address: BRIDGE }] })))
        const model: Model = { live: [], hosts: new Set(), crashed: new Set(), nextPid: 100, faulty: false }
        await fc.asyncModelRun(() => ({ model, real: { world } }), cmds)
      }),
      { numRuns: 60 }
    )
  }, 120_000)
})
