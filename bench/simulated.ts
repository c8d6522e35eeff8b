/**
 * Section 8: address choice on the simulated network (netjail/testing), as
 * the subnet grows (/24, /20, /16) and fills (0 %, 50 %, 90 %, 99 %): ARP
 * probe frames sent (World.probesSent) and virtual time to an address, with
 * Sandbox.plan run under TestClock (no real time passes) and a seeded Random
 * per run. Next to it, firejail's algorithm (2 random candidates, then a scan
 * in address order) computed analytically: a model, not a measurement.
 */
import { Effect, Exit, Option, Random, Ref, TestClock, TestContext } from "effect"
import { makeConfig, Sandbox, Subnet } from "../src/index.js"
import { layerSim, settle, SimWorld } from "../src/testing.js"
import { hostAddresses, wrongAddress } from "./checks.js"
import { formatMillis, markdownTable, summarize } from "./stats.js"

const PREFIXES = [24, 20, 16] as const
const FILLS = [0, 50, 90, 99] as const
const PROBES = 2
const WINDOW_MILLIS = 500


interface Cell {
  readonly prefix: number
  readonly fill: number
  readonly candidates: number
  readonly held: number
}

/** The held addresses: the lowest ones after the bridge's (the same layout as section 2's bottom-up rows). */
const cellOf = (prefix: number, fill: number): Cell & { readonly bridgeCidr: string; readonly heldAddresses: Array<string> } => {
  const bridgeCidr = `10.20.0.1/${prefix}`
  const hosts = hostAddresses(bridgeCidr)
  const held = Math.max(0, Math.round((hosts.length * fill) / 100) - 1)
  return { prefix, fill, candidates: hosts.length - 1, held, bridgeCidr, heldAddresses: hosts.slice(1, 1 + held) }
}

interface SimRun {
  readonly probes: number
  readonly millis: number
  readonly wrong: string | undefined
}

const simulate = (cell: ReturnType<typeof cellOf>, seed: number) =>
  Effect.gen(function*() {
    const held = new Set(cell.heldAddresses)
    const program = Effect.gen(function*() {
      const start = yield* TestClock.currentTimeMillis
      const plan = yield* Sandbox.plan(makeConfig({ interfaces: [{ device: "br0" }] }))
      const world = yield* Ref.get(yield* SimWorld)
      return { plan, millis: (yield* TestClock.currentTimeMillis) - start, probes: world.probesSent }
    }).pipe(
      Effect.provide(layerSim({
        devices: [{ name: "br0", address: cell.bridgeCidr }],
        hosts: cell.heldAddresses.map((address) => ({ segment: "br0", address }))
      }))
    )
    // A runtime of its own: providing TestContext swaps the fiber's default services for the test ones for the rest
    // of the fiber (measured: the clock after `Effect.provide(TestContext.TestContext)` stays the TestClock), and
    // a TestClock sleep in the later sections would never end.
    const exit = yield* Effect.promise(() =>
      Effect.runPromise(settle(program).pipe(Effect.withRandom(Random.make(seed)), Effect.provide(TestContext.TestContext)))
    )
    if (Exit.isFailure(exit)) return { probes: Number.NaN, millis: Number.NaN, wrong: `failed: ${String(exit.cause)}` } satisfies SimRun
    const chosen = Option.getOrElse(Option.map(exit.value.plan.addresses[0] ?? Option.none(), Subnet.format), () => "none")
    const wrong = wrongAddress({ bridgeCidr: cell.bridgeCidr, held }, chosen)
    return { probes: exit.value.probes, millis: exit.value.millis, wrong } satisfies SimRun
  })

/** What a held candidate costs firejail on this kernel, about: its per-candidate socket close (section 2). */
export const HELD_CANDIDATE_MILLIS = 10

/**
 * firejail's arp_assign as a cost model: 2 random candidates (uniform over the
 * candidates), then the scan in address order until the first free one. With
 * the held addresses at the bottom the scan meets H held ones first.
 * Model A (§2.10's worst case): every candidate costs probes × window and sends
 * `probes` frames. Model B: a held candidate answers in its first window (1
 * frame) and costs HELD_CANDIDATE_MILLIS; only the free one found costs probes × window.
 */
export const firejailModel = (cell: Cell) => {
  const free = cell.candidates - cell.held
  const q = free / cell.candidates
  const expectedCandidates = free === 0
    ? 2 + cell.candidates
    : q * 1 + (1 - q) * q * 2 + (1 - q) ** 2 * (2 + cell.held + 1)
  const heldCandidates = free === 0 ? expectedCandidates : expectedCandidates - 1
  return {
    candidates: expectedCandidates,
    modelA: { millis: expectedCandidates * PROBES * WINDOW_MILLIS, probes: expectedCandidates * PROBES },
    modelB: {
      millis: heldCandidates * HELD_CANDIDATE_MILLIS + (free === 0 ? 0 : PROBES * WINDOW_MILLIS),
      probes: heldCandidates + (free === 0 ? 0 : PROBES)
    }
  }
}

const seconds = (millis: number) => (millis >= 10_000 ? `${(millis / 1000).toFixed(0)} s` : formatMillis(millis))
const count = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1).replace(/\.0$/, ""))
const spread = (values: ReadonlyArray<number>, format: (n: number) => string) => {
  const s = summarize(values.filter(Number.isFinite))
  return s === undefined ? "—" : s.min === s.max ? format(s.median) : `${format(s.median)} (${format(s.min)}–${format(s.max)})`
}

export const simulated = (seeds: number) =>
  Effect.gen(function*() {
    const rows: Array<Array<string>> = []
    const wrongs: Array<string> = []
    for (const prefix of PREFIXES) {
      for (const fill of FILLS) {
        const cell = cellOf(prefix, fill)
        const runs: Array<SimRun> = []
        for (let seed = 1; seed <= seeds; seed++) runs.push(yield* simulate(cell, seed))
        for (const r of runs) if (r.wrong !== undefined) wrongs.push(`- /${prefix} at ${fill} %: ${r.wrong}`)
        const model = firejailModel(cell)
        const netjailMedian = summarize(runs.map((r) => r.millis).filter(Number.isFinite))?.median
        rows.push([
          `/${prefix}`,
          `${fill} %`,
          String(cell.candidates - cell.held),
          String(runs.filter((r) => r.wrong !== undefined).length),
          spread(runs.map((r) => r.probes), count),
          spread(runs.map((r) => r.millis), seconds),
          count(model.candidates),
          count(model.modelA.probes),
          seconds(model.modelA.millis),
          count(model.modelB.probes),
          seconds(model.modelB.millis),
          netjailMedian === undefined ? "" : `${(netjailMedian / model.modelB.millis).toPrecision(2)}×`
        ])
      }
    }
    return [
      `## 8. The simulated network: probes and virtual time to an address (${seeds} seeds per cell)`,
      "",
      "netjail: `Sandbox.plan` (address choice only) on `layerSim` from netjail/testing, bridge 10.20.0.1/<prefix>, under" +
      " TestClock (every probe window passes instantly), Random seeded 1.." + seeds + "; probes 2 × 500 ms. The fill counts" +
      " the subnet's host addresses, the bridge's included; the held ones are the lowest (as in section 2's bottom-up rows)," +
      " each a simulated host answering after 1 ms. \"probes sent\" is World.probesSent, which counts every target in" +
      " every round (the Linux layer does not resend to a target that has answered), so it is an upper bound of netjail's" +
      " frames. Cells show the median and, when they differ, (min–max). \"wrong\" counts runs that handed out a held address.",
      "",
      "firejail: **a model, computed, not measured**: 2 random candidates, uniform over the subnet's hosts (not the" +
      " bridge), then a scan in address order, which meets every held address first; expected values. Model A is §2.10's" +
      " cost model (every candidate costs 2 probes × 500 ms and sends 2 frames); model B is closer to what section 2 shows" +
      ` on the kernel: a held candidate answers in its first window (1 frame) and costs ${HELD_CANDIDATE_MILLIS} ms (firejail's` +
      " per-candidate socket close), the free one found costs 2 × 500 ms. The last column compares netjail's simulated" +
      " median with model B.",
      "",
      markdownTable(
        [
          "subnet",
          "fill",
          "free",
          "netjail: wrong",
          "netjail: probes sent",
          "netjail: virtual time",
          "firejail model: candidates",
          "model A: probes",
          "model A: time",
          "model B: probes",
          "model B: time",
          "netjail / model B (time)"
        ],
        rows
      ),
      ...(wrongs.length === 0 ? [] : ["", ...wrongs])
    ].join("\n")
  })
