/**
 * Section 1: one sandbox on the lab's br0 (an almost empty /24), automatic
 * address and `--ip=` static: netjail against Debian's firejail with the same
 * probe policy, and for the automatic address the CNI bridge plugin with
 * host-local IPAM as a third column (section 7 says how it is driven).
 */
import { Effect } from "effect"
import type { Expected, FirejailReport, NetjailReport } from "./checks.js"
import { cniDataDir, cniRunner, type Cni, type CniReport } from "./cni.js"
import { compareAll, notes, type Outcome, outcomeRows, problems, runnerOf, table } from "./compare.js"
import { BRIDGE, BRIDGE_ADDRESS, type Lab, PEER_ADDRESSES, STATIC_ADDRESS } from "./lab.js"
import type { Firejail } from "./machine.js"
import { markdownTable, summarize, summaryCells } from "./stats.js"
import { firejailOn, netjailOn, SETTLE_MILLIS } from "./tools.js"

export const bridged = (root: string, lab: Lab, rounds: number, firejail: Firejail, cni: Cni) =>
  Effect.gen(function*() {
    const expected: Expected = { bridgeCidr: `${BRIDGE_ADDRESS}/24`, held: new Set(PEER_ADDRESSES) }
    const fixedExpected: Expected = { ...expected, wanted: STATIC_ADDRESS }
    // one dataDir each: host-local keeps its records (and its round-robin position) per network name
    const dataDirs = [yield* cniDataDir, yield* cniDataDir] as const
    const cniUnavailable = cni.installed ? undefined : cni.reason
    const firejailUnavailable = firejail.installed ? undefined : firejail.reason
    const cniNetwork = (rangeStart: string, dataDir: string) => ({
      bridge: BRIDGE,
      bridgeCidr: `${BRIDGE_ADDRESS}/24`,
      rangeStart,
      rangeEnd: "198.18.0.254",
      dataDir
    })

    const [autoNetjail, autoFirejail, autoCni, autoCniWhole] = yield* compareAll(
      runnerOf(netjailOn(root, lab, BRIDGE, expected)),
      [
        runnerOf(firejailOn(lab, BRIDGE, expected)),
        cniRunner(lab, cniNetwork("198.18.0.10", dataDirs[0]), expected, "CNI bridge + host-local, range .10–.254"),
        cniRunner(lab, cniNetwork("198.18.0.2", dataDirs[1]), expected, "CNI bridge + host-local, range .2–.254 (the whole subnet)")
      ],
      rounds,
      { peersUnavailable: [firejailUnavailable, cniUnavailable, cniUnavailable], settleMillis: SETTLE_MILLIS }
    )
    const [fixedNetjail, fixedFirejail] = yield* compareAll(
      runnerOf(netjailOn(root, lab, BRIDGE, fixedExpected, [`--ip=${STATIC_ADDRESS}`])),
      [runnerOf(firejailOn(lab, BRIDGE, fixedExpected, [`--ip=${STATIC_ADDRESS}`]))],
      rounds,
      { peersUnavailable: [firejailUnavailable], settleMillis: SETTLE_MILLIS }
    )

    const median = (values: ReadonlyArray<number>) => summaryCells(summarize(values.filter(Number.isFinite)))
    const insideRows = (what: string, netjail: Outcome<NetjailReport>, peer: Outcome<FirejailReport>) => {
      const phases = [...new Set(netjail.extras.flatMap((e) => Object.keys(e.timings)))]
      return [
        [what, "netjail: wall time", ...median(netjail.samples)],
        [what, "netjail: readyMillis (setup inside the process)", ...median(netjail.extras.map((e) => e.readyMillis))],
        ...phases.map((p) => [what, `netjail: phase ${p}`, ...median(netjail.extras.map((e) => e.timings[p] ?? Number.NaN))]),
        [
          what,
          "netjail: wall − readyMillis (start-up, command, teardown, exit)",
          ...median(netjail.samples.map((s, i) => s - (netjail.extras[i]?.readyMillis ?? Number.NaN)))
        ],
        ...(peer.unavailable === undefined
          ? [
            [what, "firejail: wall time", ...median(peer.samples)],
            [what, "firejail: \"Child process initialized in\"", ...median(peer.extras.map((e) => e.initializedMillis ?? Number.NaN))]
          ]
          : [])
      ]
    }
    const cniRows = (o: Outcome<CniReport>) =>
      o.unavailable === undefined
        ? [
          ["auto address", `${o.label}: whole lifecycle`, ...median(o.samples)],
          ["auto address", `${o.label}: ADD`, ...median(o.extras.map((e) => e.addMillis))],
          ["auto address", `${o.label}: DEL + ip netns del`, ...median(o.extras.map((e) => e.delMillis))]
        ]
        : []
    const addresses = (o: Outcome<{ readonly address: string }>) =>
      `${o.label.split(",")[0]} got ${[...new Set(o.extras.map((e) => e.address))].join(", ") || "—"}`

    return [
      `## 1. A sandbox on ${BRIDGE}: netjail against Debian's firejail and the CNI bridge plugin (${rounds} rounds, rotating order)`,
      "",
      `All run inside the lab (\`ip netns exec ${lab.name} …\`) on br0 (${BRIDGE_ADDRESS}/24, peers ${PEER_ADDRESSES.join(", ")}).` +
      " netjail and firejail use the same probe policy: 2 probes × 500 ms per candidate (both defaults)." +
      " CNI's host-local IPAM does not probe at all: it hands out the next address of its configured range that its own" +
      " records show free. Its first row has a range that leaves out the peers, as one would configure it on a shared" +
      " segment; its second row has the whole subnet as its range, and hands out the peers' addresses (counted as wrong)." +
      " The CNI time is a runtime's whole lifecycle of one container (section 7), the counterpart of `netjail -- true`." +
      " Each run is checked: the address it reports is a host of 198.18.0.0/24, not the bridge's, not a peer's (and the" +
      " static one when given); \"runs\" counts the right answers, which alone are timed." +
      ` Every run is preceded by an untimed ${SETTLE_MILLIS} ms pause: firejail's namespace, veth and address die` +
      " asynchronously after it exits, and a run started at once can find that address still answering.",
      "",
      table([
        ...outcomeRows("auto address", [autoNetjail, autoFirejail, autoCni, autoCniWhole]),
        ...outcomeRows(`--ip=${STATIC_ADDRESS}`, [fixedNetjail, fixedFirejail])
      ]),
      ...notes(problems([autoNetjail, autoFirejail, autoCni, autoCniWhole, fixedNetjail, fixedFirejail])),
      "",
      `Addresses seen (auto): ${[autoNetjail, autoFirejail, autoCni].map(addresses).join("; ")}.` +
      ` Static: ${[fixedNetjail, fixedFirejail].map(addresses).join("; ")}.`,
      "",
      "Where the time goes (medians of what each tool reports about itself):",
      "",
      markdownTable(["command", "measure", "median", "min", "max"], [
        ...insideRows("auto address", autoNetjail, autoFirejail),
        ...cniRows(autoCni),
        ...insideRows(`--ip=${STATIC_ADDRESS}`, fixedNetjail, fixedFirejail)
      ])
    ].join("\n")
  }).pipe(Effect.scoped)
