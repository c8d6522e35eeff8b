/**
 * Section 10: the in-process setup cost, as an embedder pays it. Sandbox.run on
 * the Linux layer pointed at the lab (hostNamespace), br0 with a static address,
 * probing cut to one 1 ms window; then the scope close (teardown) on its own.
 * The layer's services are wrapped to time each call, so the phase totals can
 * be split into service calls (the wrapper adds a few µs per call).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { layerLinux, makeConfig, Sandbox, Subnet } from "../src/index.js"
import { bridgePorts, BRIDGE, type Lab, STATIC_ADDRESS } from "./lab.js"
import { formatMillis, markdownTable, summarize, summaryCells } from "./stats.js"

const PROBE_WINDOW_MILLIS = 1

export interface Call {
  readonly name: string
  /** Whether the call ran inside Sandbox.run or while its scope closed. */
  readonly stage: "run" | "teardown"
  readonly millis: number
}

interface Round {
  readonly total: number
  readonly teardown: number
  readonly phases: ReadonlyArray<{ readonly phase: string; readonly millis: number }>
  readonly calls: ReadonlyArray<Call>
}

const now = () => performance.now()

/**
 * The same services with every call timed into `calls`: each method that
 * returns an Effect, and each Effect-valued field, of every service in the
 * context, whatever services the layer provides today.
 */
export const timedContext = <R>(context: Context.Context<R>, calls: Array<Call>, stage: () => Call["stage"]): Context.Context<R> => {
  const timed = (name: string, effect: Effect.Effect<unknown, unknown, unknown>) =>
    Effect.suspend(() => {
      const start = now()
      return Effect.ensuring(effect, Effect.sync(() => calls.push({ name, stage: stage(), millis: now() - start })))
    })
  const wrap = (prefix: string, service: unknown): unknown => {
    if (typeof service !== "object" || service === null) return service
    return Object.fromEntries(Object.entries(service).map(([key, value]) => {
      const name = `${prefix}.${key}`
      if (Effect.isEffect(value)) return [key, timed(name, value)]
      if (typeof value !== "function") return [key, value]
      return [key, (...args: Array<unknown>) => {
        const result: unknown = value(...args)
        return Effect.isEffect(result) ? timed(name, result) : result
      }]
    }))
  }
  const services = new Map<string, unknown>()
  for (const [key, service] of context.unsafeMap) services.set(key, wrap(key.replace(/^netjail\//, ""), service))
  return Context.unsafeMake(services)
}

export const inProcessSetup = (lab: Lab, rounds: number) =>
  Effect.gen(function*() {
    const runDirectory = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "njb-run-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const calls: Array<Call> = []
    let stage: Call["stage"] = "run"
    const config = makeConfig({
      interfaces: [{ device: BRIDGE, address: { _tag: "Static", address: STATIC_ADDRESS } }],
      probe: { probes: 1, window: PROBE_WINDOW_MILLIS }
    })
    const portsBefore = bridgePorts(lab)

    const buildStart = now()
    const context = timedContext(
      yield* Layer.build(layerLinux({ hostNamespace: lab.path, runDirectory })),
      calls,
      () => stage
    )
    const layerBuild = now() - buildStart

    const round = Effect.gen(function*() {
      calls.length = 0
      stage = "run"
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
      stage = "teardown"
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
      formatMillis(pick(cold))
    ]
    const phasesTable = markdownTable(["", "median", "min", "max", "first run (cold)"], [
      ...phaseNames.map((phase) => row(`phase: ${phase}`, (r) => phaseOf(r, phase))),
      row("outside the phases (checks, default route, glue)", untimed),
      row(`**Sandbox.run total** (includes one ${PROBE_WINDOW_MILLIS} ms probe window)`, (r) => r.total),
      row(`Sandbox.run total less the ${PROBE_WINDOW_MILLIS} ms window`, (r) => r.total - PROBE_WINDOW_MILLIS),
      row("**scope close (teardown)**", (r) => r.teardown),
      row("run + teardown", (r) => r.total + r.teardown)
    ])

    const label = (c: Call) => (c.stage === "teardown" ? `${c.name} (in the teardown)` : c.name)
    const callNames = [...new Set(warm.flatMap((r) => r.calls.map(label)))]
    const callOf = (r: Round, name: string) => r.calls.filter((c) => label(c) === name).reduce((s, c) => s + c.millis, 0)
    const callsTable = markdownTable(
      ["service call (per run)", "median", "min", "max", "first run (cold)"],
      callNames.map((name) => row(name, (r) => callOf(r, name)))
    )

    return [
      `## 10. In-process setup: Sandbox.run on the Linux layer (${warm.length} runs after one cold run)`,
      "",
      `layerLinux({ hostNamespace: "${lab.path}", runDirectory: <tmp> }), --net=${BRIDGE} --ip=${STATIC_ADDRESS},` +
      ` probes 1 × ${PROBE_WINDOW_MILLIS} ms, run directory (lock, leases) in a temporary directory.` +
      ` Layer build (netlink socket in the lab): ${layerBuild.toFixed(2)} ms.` +
      " Target per the design: a few milliseconds.",
      "",
      phasesTable,
      "",
      "The same runs, split by service call (summed per run; the phases above contain them; Arp.probe includes the" +
      ` ${PROBE_WINDOW_MILLIS} ms window):`,
      "",
      callsTable,
      "",
      leftover.length === 0
        ? `After the runs br0's ports are ${portsAfter.join(", ")} (the peers only): no veth was left behind.`
        : `**Leftover after the runs:** br0 still has ${leftover.join(", ")}.`
    ].join("\n")
  }).pipe(Effect.scoped)
