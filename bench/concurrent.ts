/**
 * Section 4: concurrent starts on one bridge. k sandboxes (1, 5, 10, 20) are
 * started at once on br0; each runs `sleep` so that all of them coexist, and
 * the batch's time is when the last one is up: for netjail when its `--json`
 * line appears (printed once the sandbox is ready, before the command runs),
 * for firejail when "Child process initialized" appears, for CNI when the
 * last ADD returns. Then every tool is sent SIGTERM (by pid), and the next
 * batch waits until br0 has only the peers' ports again. While all are up
 * the bench checks each address (in the subnet, not a peer's), that they are
 * distinct, and that br0 has one new port per sandbox (`ip -json`, the
 * independent oracle). A batch with any failed start or wrong answer is not timed.
 */
import { Effect, Either } from "effect"
import { type Expected, FIREJAIL_READY, firejailReport, netjailReport } from "./checks.js"
import { cniAttach, cniDataDir, type Cni, type CniNetwork } from "./cni.js"
import { counted, notes } from "./compare.js"
import { BRIDGE, BRIDGE_ADDRESS, bridgePorts, type Lab, PEER_ADDRESSES, portsSettled } from "./lab.js"
import type { Firejail } from "./machine.js"
import { startProcess } from "./processes.js"
import { formatMillis, formatRatio, markdownTable, summarize, summaryCells } from "./stats.js"
import { firejailArgs, netjailArgs } from "./tools.js"

export const LEVELS = [1, 5, 10, 20] as const
/** Long enough for the slowest batch (firejail comes up one sandbox at a time, about 1.6 s each). */
const LIMIT_MILLIS = 120_000
const COMMAND = ["sleep", "300"]

interface Batch {
  /** Until the last sandbox was up, from the first spawn; undefined when the batch had a failure or a wrong answer. */
  readonly millis: number | undefined
  readonly up: number
  readonly distinct: number
  /** Ports br0 gained while all were up. */
  readonly ports: number
  readonly wrong: Array<string>
  readonly failures: Array<string>
  readonly addresses: Array<string>
  /** What each sandbox reported about its own setup (netjail's readyMillis), where the tool reports it. */
  readonly inside: Array<number>
}

interface Tool {
  readonly name: string
  readonly unavailable: string | undefined
  readonly batch: (k: number) => Effect.Effect<Batch>
}

const SETTLE_LIMIT_MILLIS = 20_000

/** After a batch: wait until br0 has only its baseline ports; a batch that leaves more says so. */
const settleAfter = (lab: Lab, baseline: ReadonlyArray<string>) => (batch: Batch) =>
  Effect.map(Effect.promise(() => portsSettled(lab, BRIDGE, baseline, SETTLE_LIMIT_MILLIS)), (settled): Batch =>
    settled
      ? batch
      : { ...batch, failures: [...batch.failures, `br0 still had extra ports ${SETTLE_LIMIT_MILLIS / 1000} s after the batch ended`] })

/** One batch of a tool that is a process per sandbox and says on its output when the sandbox is up. */
const processBatch = (
  lab: Lab,
  baseline: ReadonlyArray<string>,
  k: number,
  args: ReadonlyArray<string>,
  readyWhen: (output: { stdout: string; stderr: string }) => boolean,
  report: (output: { stdout: string; stderr: string }) => Either.Either<{ readonly address: string; readonly readyMillis?: number }, string>
) =>
  Effect.scoped(Effect.gen(function*() {
    const t0 = performance.now()
    const started = yield* Effect.forEach(
      Array.from({ length: k }),
      () => startProcess("ip", ["netns", "exec", lab.name, ...args], { readyWhen, limitMillis: LIMIT_MILLIS })
    )
    const readies = yield* Effect.forEach(started, (s) => Effect.either(s.ready), { concurrency: "unbounded" })
    const ports = bridgePorts(lab).length - baseline.length
    const failures: Array<string> = []
    const wrong: Array<string> = []
    const addresses: Array<string> = []
    const inside: Array<number> = []
    let last = 0
    readies.forEach((ready, i) => {
      if (Either.isLeft(ready)) return void failures.push(ready.left.reason)
      last = Math.max(last, ready.right - t0)
      const reported = report(started[i]!.output())
      if (Either.isLeft(reported)) return void wrong.push(reported.left)
      addresses.push(reported.right.address)
      if (reported.right.readyMillis !== undefined) inside.push(reported.right.readyMillis)
    })
    // all at once: firejail takes about a second to shut its sandbox down, so one after the other would add k seconds
    for (const s of started) s.signal("SIGTERM")
    yield* Effect.forEach(started, (s) => Effect.timeout(s.closed, "10 seconds").pipe(Effect.option), { concurrency: "unbounded" })
    return { t0, last, failures, wrong, addresses, ports, inside }
  })).pipe(
    Effect.map(({ addresses, failures, inside, last, ports, wrong }): Batch => {
      const distinct = new Set(addresses).size
      if (distinct < addresses.length) wrong.push(`${addresses.length - distinct} address(es) handed out twice: ${addresses.join(", ")}`)
      if (failures.length === 0 && ports !== k) wrong.push(`br0 gained ${ports} ports while ${k} sandboxes were up`)
      return {
        millis: failures.length === 0 && wrong.length === 0 ? last : undefined,
        up: k - failures.length,
        distinct,
        ports,
        wrong,
        failures,
        addresses,
        inside
      }
    }),
    Effect.flatMap(settleAfter(lab, baseline))
  )

/** One batch of CNI: k container namespaces and ADDs at once; the batch is up when the last ADD returns. */
const cniBatch = (lab: Lab, baseline: ReadonlyArray<string>, k: number, network: CniNetwork, expected: Expected) =>
  Effect.scoped(Effect.gen(function*() {
    const t0 = performance.now()
    const attached = yield* Effect.forEach(
      Array.from({ length: k }),
      () => Effect.either(Effect.map(cniAttach(lab, network), (a) => ({ ...a, at: performance.now() }))),
      { concurrency: "unbounded" }
    )
    const ports = bridgePorts(lab).length - baseline.length
    const failures: Array<string> = []
    const wrong: Array<string> = []
    const addresses: Array<string> = []
    let last = 0
    for (const a of attached) {
      if (Either.isLeft(a)) {
        failures.push(a.left.reason)
        continue
      }
      last = Math.max(last, a.right.at - t0)
      if (Either.isLeft(a.right.address)) {
        wrong.push(a.right.address.left)
        continue
      }
      const report = netjailLike(expected, a.right.address.right)
      if (Either.isLeft(report)) wrong.push(report.left)
      else addresses.push(report.right)
    }
    const distinct = new Set(addresses).size
    if (distinct < addresses.length) wrong.push(`${addresses.length - distinct} address(es) handed out twice`)
    if (failures.length === 0 && ports !== k) wrong.push(`br0 gained ${ports} ports while ${k} containers were attached`)
    return {
      millis: failures.length === 0 && wrong.length === 0 ? last : undefined,
      up: k - failures.length,
      distinct,
      ports,
      wrong,
      failures,
      addresses,
      inside: []
    } satisfies Batch
  })).pipe(Effect.flatMap(settleAfter(lab, baseline)))

/** The CNI result's address through the same check as the others. */
const netjailLike = (expected: Expected, cidr: string): Either.Either<string, string> =>
  Either.map(
    netjailReport(expected)(JSON.stringify({ interfaces: [{ name: "eth0", address: cidr }] })),
    (r) => r.address
  )

export const concurrent = (root: string, lab: Lab, batches: number, firejail: Firejail, cni: Cni) =>
  Effect.gen(function*() {
    const expected: Expected = { bridgeCidr: `${BRIDGE_ADDRESS}/24`, held: new Set(PEER_ADDRESSES) }
    const baseline = bridgePorts(lab)
    const network: CniNetwork = {
      bridge: BRIDGE,
      bridgeCidr: `${BRIDGE_ADDRESS}/24`,
      rangeStart: "198.18.0.10",
      rangeEnd: "198.18.0.254",
      dataDir: yield* cniDataDir
    }
    const netjailReady = (o: { stderr: string }) => /^\{.*"readyMillis".*\}$/m.test(o.stderr)
    const tools: Array<Tool> = [
      {
        name: `netjail --net=${BRIDGE} -- ${COMMAND.join(" ")}`,
        unavailable: undefined,
        batch: (k) => processBatch(lab, baseline, k, netjailArgs(root, BRIDGE, [], COMMAND), netjailReady, (o) => netjailReport(expected)(o.stderr))
      },
      {
        name: `firejail --noprofile --net=${BRIDGE} -- ${COMMAND.join(" ")}`,
        unavailable: firejail.installed ? undefined : firejail.reason,
        batch: (k) =>
          processBatch(
            lab,
            baseline,
            k,
            firejailArgs(BRIDGE, [], COMMAND),
            (o) => FIREJAIL_READY.test(o.stdout) || FIREJAIL_READY.test(o.stderr),
            (o) => firejailReport(expected)(`${o.stdout}\n${o.stderr}`)
          )
      },
      {
        name: "CNI bridge + host-local (.10–.254): ip netns add + ADD",
        unavailable: cni.installed ? undefined : cni.reason,
        batch: (k) => cniBatch(lab, baseline, k, network, expected)
      }
    ]
    const live = tools.filter((t) => t.unavailable === undefined)
    const results = new Map<string, Array<Batch>>()
    for (const k of LEVELS) {
      for (let round = 0; round < batches; round++) {
        const order = live.map((_, i) => live[(i + round) % live.length]!)
        for (const tool of order) {
          const began = performance.now()
          const batch = yield* tool.batch(k)
          yield* Effect.sync(() =>
            process.stderr.write(
              `bench:   ${k} at once, ${tool.name.split(" ")[0]}, batch ${round + 1}/${batches}: ` +
                `${batch.millis === undefined ? `not timed (${batch.failures.length} failed, ${batch.wrong.length} wrong)` : `all up in ${formatMillis(batch.millis)}`}` +
                `, ${((performance.now() - began) / 1000).toFixed(1)} s with the teardown\n`
            )
          )
          const key = `${k}|${tool.name}`
          results.set(key, [...(results.get(key) ?? []), batch])
        }
      }
    }

    const netjailName = tools[0]!.name
    const timed = (k: number, name: string) => (results.get(`${k}|${name}`) ?? []).flatMap((b) => (b.millis === undefined ? [] : [b.millis]))
    const rows = LEVELS.flatMap((k) =>
      tools.map((tool) => {
        if (tool.unavailable !== undefined) return [String(k), tool.name, "0", "—", "—", "—", "—", "—", "—", "not run (see below)"]
        const all = results.get(`${k}|${tool.name}`) ?? []
        const samples = timed(k, tool.name)
        const ratio = tool.name === netjailName ? "" : formatRatio(summarize(timed(k, netjailName)), summarize(samples))
        return [
          String(k),
          tool.name,
          String(samples.length),
          String(all.reduce((n, b) => n + b.wrong.length, 0)),
          ...summaryCells(summarize(samples)),
          `${all.reduce((n, b) => n + b.up, 0)} / ${all.length * k}`,
          all.length === 0 ? "—" : String(Math.min(...all.map((b) => b.distinct))),
          ratio
        ]
      })
    )
    const problems = tools.flatMap((tool) => [
      ...(tool.unavailable === undefined ? [] : [`- **${tool.name}** was not run: ${tool.unavailable}`]),
      ...LEVELS.flatMap((k) => {
        const all = results.get(`${k}|${tool.name}`) ?? []
        return [
          ...counted(all.flatMap((b) => b.wrong)).map((w) => `- **${tool.name}**, ${k} at once: wrong: ${w}`),
          ...counted(all.flatMap((b) => b.failures)).map((f) => `- **${tool.name}**, ${k} at once: failed start: ${f}`)
        ]
      })
    ]).map((line) => line.replaceAll("\n", "\n  "))

    const single = summarize(timed(1, netjailName))
    const ten = summarize(timed(10, netjailName))
    const target = single !== undefined && ten !== undefined
      ? `netjail, 10 at once against 1 alone (medians): ${formatMillis(ten.median)} / ${formatMillis(single.median)} =` +
        ` ${(ten.median / single.median).toFixed(2)}× (target: about 2× or less).`
      : "netjail's 1-at-once or 10-at-once batches have no timed sample; see the notes."

    const insideLine = "netjail's own readyMillis (its `--json`: from its start of Sandbox.run until ready), median over all" +
      " sandboxes of a level: " +
      LEVELS.map((k) => {
        const values = (results.get(`${k}|${netjailName}`) ?? []).flatMap((b) => b.inside)
        const s = summarize(values)
        return `${k}: ${s === undefined ? "—" : `${formatMillis(s.median)} (max ${formatMillis(s.max)})`}`
      }).join("; ") +
      ". The rest of the time until all are up is k Node processes starting at once on this machine's CPUs."

    return [
      `## 4. Concurrent starts on one bridge (${batches} batches per level and tool, rotating order)`,
      "",
      `k sandboxes started at once on ${BRIDGE} (${BRIDGE_ADDRESS}/24, peers ${PEER_ADDRESSES.join(", ")}), each running` +
      ` \`${COMMAND.join(" ")}\` so that all coexist. Time: from the first spawn until the last one is up (netjail: its` +
      " `--json` line, printed when the sandbox is ready and before the command runs; firejail: its \"Child process" +
      " initialized\" line; CNI: the last `ip netns add` + ADD returned). Then each tool gets SIGTERM and the next batch" +
      " waits until br0 has only the peers' ports. \"up / started\": sandboxes that came up; \"distinct\": the fewest" +
      " distinct addresses in one batch; \"wrong\": wrong or duplicate addresses, or a port count on br0 that does not" +
      " match (`ip -json link show master br0` while all are up). A batch with a failed start or a wrong answer is not timed.",
      "",
      markdownTable(
        ["at once", "tool", "batches timed", "wrong", "all up: median", "min", "max", "up / started", "distinct", "netjail/peer (median)"],
        rows
      ),
      ...notes(problems),
      "",
      target,
      "",
      insideLine
    ].join("\n")
  }).pipe(Effect.scoped)
