/**
 * Scenario 1: the in-process setup cost, as an embedder pays it. Sandbox.run on
 * the Linux layer pointed at the lab (hostNamespace), br0 with a static address,
 * probing cut to one 1 ms window; then the scope close (teardown) on its own.
 * The four services are wrapped to time each call, so the phase totals can be
 * split into kernel calls (the wrapper adds a few µs per call).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { Arp, HostLock, Links, layerLinux, makeConfig, Namespaces, Sandbox, Subnet } from "../src/index.js"
import { bridgePorts, BRIDGE, type Lab, STATIC_ADDRESS } from "./lab.js"
import { markdownTable, summarize, summaryCells } from "./stats.js"

const PROBE_WINDOW_MILLIS = 1

interface Call {
  readonly name: string
  readonly millis: number
}

interface Round {
  readonly total: number
  readonly teardown: number
  readonly phases: ReadonlyArray<{ readonly phase: string; readonly millis: number }>
  readonly calls: ReadonlyArray<Call>
}

const now = () => performance.now()

/** The Linux layer with every service call timed into `calls`. */
const timedLayer = (base: Layer.Layer<Links | Arp | Namespaces | HostLock, unknown>, calls: Array<Call>) => {
  const timed = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const start = now()
      return Effect.ensuring(effect, Effect.sync(() => calls.push({ name, millis: now() - start })))
    })
  return Layer.effectContext(Effect.gen(function*() {
    const links = yield* Links
    const arp = yield* Arp
    const namespaces = yield* Namespaces
    const lock = yield* HostLock
    return Context.make(Links, {
      readDevice: (name) => timed("Links.readDevice", links.readDevice(name)),
      hostGateway: timed("Links.hostGateway", links.hostGateway),
      createVethPair: (spec) => timed("Links.createVethPair", links.createVethPair(spec)),
      createChildLink: (spec) => timed("Links.createChildLink", links.createChildLink(spec)),
      setUp: (namespace, setup) => timed("Links.setUp", links.setUp(namespace, setup)),
      addDefaultRoute: (namespace, gateway) => timed("Links.addDefaultRoute", links.addDefaultRoute(namespace, gateway)),
      deleteHostLink: (name) => timed("Links.deleteHostLink (teardown)", links.deleteHostLink(name))
    }).pipe(
      Context.add(Arp, {
        probe: (request) => timed(`Arp.probe (includes the ${PROBE_WINDOW_MILLIS} ms window)`, arp.probe(request)),
        awaitAnswer: (endpoint, target, timeout) => timed("Arp.awaitAnswer", arp.awaitAnswer(endpoint, target, timeout)),
        announce: (endpoint, address) => timed("Arp.announce", arp.announce(endpoint, address))
      }),
      Context.add(Namespaces, {
        create: timed("Namespaces.create", namespaces.create),
        spawn: (namespace, request) => timed("Namespaces.spawn", namespaces.spawn(namespace, request))
      }),
      Context.add(HostLock, { acquire: (timeout) => timed("HostLock.acquire", lock.acquire(timeout)) })
    )
  })).pipe(Layer.provide(base))
}

export interface InProcessResult {
  readonly markdown: string
}

export const inProcessSetup = (lab: Lab, rounds: number) =>
  Effect.gen(function*() {
    const lockDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "njb-lock-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const calls: Array<Call> = []
    const config = makeConfig({
      interfaces: [{ device: BRIDGE, address: { _tag: "Static", address: STATIC_ADDRESS } }],
      probe: { probes: 1, window: PROBE_WINDOW_MILLIS }
    })
    const portsBefore = bridgePorts(lab)

    const buildStart = now()
    const context = yield* Layer.build(
      timedLayer(layerLinux({ hostNamespace: lab.path, lockPath: join(lockDir, "netjail.lock") }), calls)
    )
    const layerBuild = now() - buildStart

    const round: Effect.Effect<Round, unknown> = Effect.gen(function*() {
      calls.length = 0
      const scope = yield* Scope.make()
      const start = now()
      const sandbox = yield* Sandbox.run(config).pipe(
        Scope.extend(scope),
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void))
      )
      const total = now() - start
      const address = Option.map(sandbox.interfaces[0]?.address ?? Option.none(), Subnet.format)
      if (!Option.contains(address, `${STATIC_ADDRESS}/24`)) {
        yield* Scope.close(scope, Exit.void)
        return yield* Effect.fail(`Sandbox.run gave eth0 the address ${Option.getOrElse(address, () => "none")}, not ${STATIC_ADDRESS}/24`)
      }
      const closeStart = now()
      yield* Scope.close(scope, Exit.void)
      const teardown = now() - closeStart
      return { total, teardown, phases: sandbox.timings, calls: [...calls] }
    }).pipe(Effect.provide(context))

    const cold = yield* round
    const warm: Array<Round> = []
    for (let i = 0; i < rounds; i++) warm.push(yield* round)

    const portsAfter = bridgePorts(lab)
    const leftover = portsAfter.filter((p) => !portsBefore.includes(p))

    const phaseNames = [...new Set(warm.flatMap((r) => r.phases.map((p) => p.phase)))]
    const phaseOf = (r: Round, phase: string) => r.phases.filter((p) => p.phase === phase).reduce((s, p) => s + p.millis, 0)
    const untimed = (r: Round) => r.total - r.phases.reduce((s, p) => s + p.millis, 0)
    const row = (label: string, pick: (r: Round) => number) => [
      label,
      ...summaryCells(summarize(warm.map(pick))),
      (Math.round(pick(cold) * 100) / 100).toFixed(2) + " ms"
    ]
    const phasesTable = markdownTable(["", "median", "min", "max", "first run (cold)"], [
      ...phaseNames.map((phase) => row(`phase: ${phase}`, (r) => phaseOf(r, phase))),
      row("outside the phases (checks, default route, glue)", untimed),
      row(`**Sandbox.run total** (includes one ${PROBE_WINDOW_MILLIS} ms probe window)`, (r) => r.total),
      row(`Sandbox.run total less the ${PROBE_WINDOW_MILLIS} ms window`, (r) => r.total - PROBE_WINDOW_MILLIS),
      row("**scope close (teardown)**", (r) => r.teardown),
      row("run + teardown", (r) => r.total + r.teardown)
    ])

    const callNames = [...new Set(warm.flatMap((r) => r.calls.map((c) => c.name)))]
    const callOf = (r: Round, name: string) => r.calls.filter((c) => c.name === name).reduce((s, c) => s + c.millis, 0)
    const callsTable = markdownTable(
      ["service call (per run)", "median", "min", "max", "first run (cold)"],
      callNames.map((name) => row(name, (r) => callOf(r, name)))
    )

    const markdown = [
      `## 1. In-process setup: Sandbox.run on the Linux layer (${warm.length} runs after one cold run)`,
      "",
      `layerLinux({ hostNamespace: "${lab.path}", lockPath: <tmp> }), --net=${BRIDGE} --ip=${STATIC_ADDRESS},` +
      ` probes 1 × ${PROBE_WINDOW_MILLIS} ms. Layer build (netlink socket in the lab): ${layerBuild.toFixed(2)} ms.` +
      " Target per the design: a few milliseconds.",
      "",
      phasesTable,
      "",
      "The same runs, split by service call (the phases above contain them):",
      "",
      callsTable,
      "",
      leftover.length === 0
        ? `After the runs br0's ports are ${portsAfter.join(", ")} (the peers only): no veth was left behind.`
        : `**Leftover after the runs:** br0 still has ${leftover.join(", ")}.`
    ].join("\n")
    return { markdown } satisfies InProcessResult
  }).pipe(Effect.scoped)
