/**
 * Scenarios 2 and 3: the bundled CLI as a user runs it, every command inside
 * the lab namespace through `ip netns exec <lab>`, so both tools see br0 as
 * their host bridge and nothing touches the root namespace.
 */
import { join } from "node:path"
import { Effect, Either } from "effect"
import { type Comparison, compare, comparisonRows, type Contender, problems, singleRow, table } from "./compare.js"
import { BRIDGE, BRIDGE_ADDRESS, type Lab, PEER_ADDRESSES, STATIC_ADDRESS } from "./lab.js"
import type { Firejail } from "./machine.js"
import { type Finished, timedRun } from "./processes.js"
import { markdownTable, summarize, summaryCells } from "./stats.js"

const inLab = (lab: Lab, command: ReadonlyArray<string>) => ({
  command: "ip",
  args: ["netns", "exec", lab.name, ...command]
})

const ok = <A>(value: A) => Either.right<A>(value)

// ---- scenario 2: start-up -------------------------------------------------------------

export const startup = (root: string, lab: Lab, rounds: number, version: string) =>
  Effect.gen(function*() {
    const bundle = join(root, "dist/netjail.mjs")
    const node = process.execPath
    const nodeBaseline: Contender<void> = { label: "node -e 0", ...inLab(lab, [node, "-e", "0"]), check: () => ok(undefined) }

    const floor: Array<number> = []
    for (let i = 0; i < rounds; i++) {
      const run = yield* timedRun("ip", ["netns", "exec", lab.name, "true"])
      if (run.code === 0) floor.push(run.millis)
    }
    const versionRun = yield* compare<void, void>({
      label: "netjail --version",
      ...inLab(lab, [node, bundle, "--version"]),
      check: (f) => (f.stdout.trim() === version ? ok(undefined) : Either.left(`printed ${JSON.stringify(f.stdout.trim())}`))
    }, nodeBaseline, rounds)
    const none = yield* compare<void, void>({
      label: "netjail --net=none -- true",
      ...inLab(lab, [node, bundle, "--net=none", "--", "true"]),
      check: (f) => (f.stderr.includes("127.0.0.1") ? ok(undefined) : Either.left(`no interface table on stderr: ${f.stderr.trim()}`))
    }, nodeBaseline, rounds)

    return [
      `## 2. CLI start-up: the bundled dist/netjail.mjs against \`node -e 0\` (${rounds} rounds, alternating)`,
      "",
      `Every command runs as \`ip netns exec ${lab.name} …\`; the first row is that wrapper alone.`,
      "",
      table([
        singleRow("wrapper", `ip netns exec ${lab.name} true`, floor),
        ...comparisonRows("version", versionRun),
        ...comparisonRows("--net=none", none)
      ]),
      ...notes(problems([versionRun.netjail, versionRun.peer, none.netjail, none.peer]))
    ].join("\n")
  })

// ---- scenario 3: a sandbox on br0 ---------------------------------------------------------

interface NetjailReport {
  readonly address: string
  readonly readyMillis: number
  readonly timings: Record<string, number>
}

interface FirejailReport {
  readonly address: string
  readonly initializedMillis: number | undefined
}

/**
 * Untimed pause before each run: firejail leaves its namespace (and with it its
 * veth and the sandbox address) for the kernel to tear down after it exits, and
 * a run started at once can find the address still answering (measured: 2 of 12
 * back-to-back `firejail --ip=X` runs failed with "IP address X is already in use").
 */
const SETTLE_MILLIS = 250

const ipv4 = /^198\.18\.0\.(\d{1,3})$/

/** In the lab's /24, not the bridge, not a peer, and the requested one when static. */
const checkAddress = (address: string, wanted: string | undefined): string | undefined => {
  const host = ipv4.exec(address)?.[1]
  if (host === undefined || Number(host) < 1 || Number(host) > 254) return `address ${address} is not a host of 198.18.0.0/24`
  if (address === BRIDGE_ADDRESS) return `address ${address} is the bridge's`
  if ((PEER_ADDRESSES as ReadonlyArray<string>).includes(address)) return `address ${address} belongs to a peer`
  if (wanted !== undefined && address !== wanted) return `address ${address}, not the requested ${wanted}`
  return undefined
}

/** netjail --json writes one JSON object on a line of stderr. */
const checkNetjail = (wanted: string | undefined) => (f: Finished): Either.Either<NetjailReport, string> => {
  const line = f.stderr.split("\n").find((l) => l.startsWith("{"))
  if (line === undefined) return Either.left(`no --json summary on stderr: ${f.stderr.trim()}`)
  let summary: { interfaces?: Array<{ name?: string; address?: string | null }>; readyMillis?: number; timings?: Record<string, number> }
  try {
    summary = JSON.parse(line)
  } catch {
    return Either.left(`unparsable --json summary: ${line}`)
  }
  const eth0 = summary.interfaces?.find((i) => i.name === "eth0")
  const cidr = eth0?.address
  if (typeof cidr !== "string" || !cidr.endsWith("/24")) return Either.left(`eth0 has address ${String(cidr)}, not a /24`)
  const address = cidr.slice(0, -3)
  const wrong = checkAddress(address, wanted)
  if (wrong !== undefined) return Either.left(wrong)
  return Either.right({ address, readyMillis: summary.readyMillis ?? Number.NaN, timings: summary.timings ?? {} })
}

/** firejail prints its interface table (`eth0  <mac>  <ip>  <mask>  UP`) and how long the child took. */
const checkFirejail = (wanted: string | undefined) => (f: Finished): Either.Either<FirejailReport, string> => {
  const output = `${f.stdout}\n${f.stderr}`
  const address = /^eth0\s+\S+\s+(\d+\.\d+\.\d+\.\d+)\s/m.exec(output)?.[1]
  if (address === undefined) return Either.left(`no eth0 line in firejail's output: ${output.trim()}`)
  const wrong = checkAddress(address, wanted)
  if (wrong !== undefined) return Either.left(wrong)
  const initialized = /Child process initialized in ([\d.]+) ms/.exec(output)?.[1]
  return Either.right({ address, initializedMillis: initialized === undefined ? undefined : Number(initialized) })
}

export const bridged = (root: string, lab: Lab, rounds: number, firejail: Firejail) =>
  Effect.gen(function*() {
    const bundle = join(root, "dist/netjail.mjs")
    const unavailable = firejail.installed ? undefined : firejail.reason
    const variant = (staticIp: boolean) => {
      const ipOption = staticIp ? [`--ip=${STATIC_ADDRESS}`] : []
      const wanted = staticIp ? STATIC_ADDRESS : undefined
      return compare<NetjailReport, FirejailReport>(
        {
          label: `netjail --net=${BRIDGE} ${ipOption.join(" ")} -- true`.replace("  ", " "),
          ...inLab(lab, [process.execPath, bundle, "--json", `--net=${BRIDGE}`, ...ipOption, "--", "true"]),
          check: checkNetjail(wanted)
        },
        {
          label: `firejail --noprofile --net=${BRIDGE} ${ipOption.join(" ")} -- true`.replace("  ", " "),
          ...inLab(lab, ["firejail", "--noprofile", `--net=${BRIDGE}`, ...ipOption, "--", "true"]),
          check: checkFirejail(wanted)
        },
        rounds,
        { peerUnavailable: unavailable, settleMillis: SETTLE_MILLIS }
      )
    }
    const auto = yield* variant(false)
    const fixed = yield* variant(true)

    const median = (values: ReadonlyArray<number>) => summaryCells(summarize(values.filter(Number.isFinite)))
    const insideRows = (what: string, c: Comparison<NetjailReport, FirejailReport>) => {
      const phases = [...new Set(c.netjail.extras.flatMap((e) => Object.keys(e.timings)))]
      return [
        [what, "netjail: wall time", ...median(c.netjail.samples)],
        [what, "netjail: readyMillis (setup inside the process)", ...median(c.netjail.extras.map((e) => e.readyMillis))],
        ...phases.map((p) => [what, `netjail: phase ${p}`, ...median(c.netjail.extras.map((e) => e.timings[p] ?? Number.NaN))]),
        [
          what,
          "netjail: wall − readyMillis (start-up, command, teardown, exit)",
          ...median(c.netjail.samples.map((s, i) => s - (c.netjail.extras[i]?.readyMillis ?? Number.NaN)))
        ],
        ...(c.peer.unavailable === undefined
          ? [
            [what, "firejail: wall time", ...median(c.peer.samples)],
            [what, "firejail: \"Child process initialized in\"", ...median(c.peer.extras.map((e) => e.initializedMillis ?? Number.NaN))]
          ]
          : [])
      ]
    }
    const addresses = (c: Comparison<NetjailReport, FirejailReport>) =>
      `netjail got ${[...new Set(c.netjail.extras.map((e) => e.address))].join(", ") || "—"}; ` +
      `firejail got ${[...new Set(c.peer.extras.map((e) => e.address))].join(", ") || "—"}`

    return [
      `## 3. A sandbox on ${BRIDGE}: netjail against Debian's firejail (${rounds} rounds, alternating)`,
      "",
      `Both run as \`ip netns exec ${lab.name} …\` on br0 (${BRIDGE_ADDRESS}/24, peers ${PEER_ADDRESSES.join(", ")}),` +
      " with the same probe policy: 2 probes × 500 ms per candidate (both defaults). Each run is checked: exit 0," +
      " and the address it reports is in 198.18.0.0/24, not the bridge's, not a peer's (and the static one when given)." +
      ` Every run is preceded by an untimed ${SETTLE_MILLIS} ms pause: firejail's namespace, veth and address die` +
      " asynchronously after it exits, and a run started at once can find that address still answering.",
      ...(firejail.installed ? [] : ["", `**firejail is not available:** ${firejail.reason}.`]),
      "",
      table([...comparisonRows("auto address", auto), ...comparisonRows(`--ip=${STATIC_ADDRESS}`, fixed)]),
      ...notes(problems([auto.netjail, auto.peer, fixed.netjail, fixed.peer])),
      "",
      `Addresses seen: auto: ${addresses(auto)}. Static: ${addresses(fixed)}.`,
      "",
      "Where the time goes (medians of what each tool reports about itself):",
      "",
      markdownTable(["command", "measure", "median", "min", "max"], [
        ...insideRows("auto address", auto),
        ...insideRows(`--ip=${STATIC_ADDRESS}`, fixed)
      ])
    ].join("\n")
  })

const notes = (lines: ReadonlyArray<string>): Array<string> => (lines.length === 0 ? [] : ["", ...lines])
