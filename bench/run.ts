/**
 * netjail's benchmarks (`npm run bench [-- --rounds N] [--only 1,4,…]`, as root):
 * builds its own lab (namespaces prefixed njb-, addresses from 198.18.0.0/15),
 * runs each scenario for netjail and its peers (Debian's firejail; the CNI
 * bridge plugin with host-local where it applies) in rotating order for
 * several rounds, checks every answer, prints markdown tables and writes them
 * to bench/RESULTS.md with the machine's description. Sections, one module each:
 *   1 bridged.ts     one sandbox on br0, automatic and static address (+ CNI)
 *   2 crowded.ts     a crowded /24 (50, 90, 99 % held; bottom-up and scattered)
 *   3 fullSubnet.ts  a full /27: time to "all of them are in use"
 *   4 concurrent.ts  1, 5, 10, 20 starts at once (+ CNI)
 *   5 noisy.ts       a noisy segment with few free addresses
 *   6 startup.ts     CLI start-up; 6b startupProfile.ts where it goes
 *   7 cni.ts         how the CNI column is driven
 *   8 simulated.ts   probes and virtual time on the simulated network, with firejail's cost model
 *   9 memory.ts      peak memory per sandbox
 *  10 inProcess.ts   the in-process setup cost, per phase and service call
 * The lab is deleted on success, failure, SIGINT, SIGTERM and SIGHUP; an
 * `exit` listener is the last resort. Children are only ever signalled by pid.
 */
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Cause, Effect, Exit } from "effect"
import { bridged } from "./bridged.js"
import { cniSection, detectCni } from "./cni.js"
import { concurrent } from "./concurrent.js"
import { crowded } from "./crowded.js"
import { fullSubnet } from "./fullSubnet.js"
import { inProcessSetup } from "./inProcess.js"
import { createLab, deleteAllNamespaces, type Lab, LAB_PREFIX, leftoverLeases, leftoverNamespaces } from "./lab.js"
import { describeMachine, detectFirejail, loadAverage, netjailVersion, staleBundle } from "./machine.js"
import { memory } from "./memory.js"
import { noisy } from "./noisy.js"
import { killRunning, REMOVED_FROM_ENVIRONMENT } from "./processes.js"
import { simulated } from "./simulated.js"
import { startup } from "./startup.js"
import { startupProfile } from "./startupProfile.js"
import { markdownTable } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const RESULTS = new URL("./RESULTS.md", import.meta.url)

/** In the order of RESULTS.md; they run in RUN_ORDER. */
const SCENARIOS = ["1", "2", "3", "4", "5", "6", "6b", "7", "8", "9", "10"] as const
type Scenario = (typeof SCENARIOS)[number]
/** The in-process setup first, so its "cold" run is the process's first sandbox. */
const RUN_ORDER: ReadonlyArray<Scenario> = ["10", "1", "2", "3", "4", "5", "6", "6b", "7", "8", "9"]

const usage = "usage: npm run bench [-- --rounds N] [--only 1,2,...]\n" +
  "  N: 1..100, default 10: rounds of sections 1 and 6 and the seeds of 8; sections 2, 3, 5 and 9 run ⌈N/2⌉ rounds,\n" +
  "  4 runs ⌈N/4⌉ batches per level and tool, 6b min(N, 5), 10 3×N.\n" +
  `  --only runs some of ${SCENARIOS.join(",")} (RESULTS.md is then not written).\n` +
  "  Needs root, firejail (apt-get install -y firejail) and the CNI plugins (apt-get install -y containernetworking-plugins);\n" +
  "  without them their columns are skipped with the reason."

interface Options {
  readonly rounds: number
  readonly only: ReadonlySet<Scenario> | undefined
}

const parseOptions = (args: ReadonlyArray<string>): Options => {
  const value = (name: string): string | undefined => {
    const at = args.findIndex((a) => a === name || a.startsWith(`${name}=`))
    if (at === -1) return undefined
    return args[at]!.includes("=") ? args[at]!.slice(name.length + 1) : args[at + 1]
  }
  const known = new Set(["--rounds", "--only"])
  if (args.includes("--help") || args.includes("-h")) throw Object.assign(new Error(usage), { status: 0 })
  const unknown = args.filter((a, i) => a.startsWith("--") && !known.has(a.split("=")[0]!) && !known.has(args[i - 1] ?? ""))
  if (unknown.length > 0) throw new Error(`unknown option ${unknown[0]}\n${usage}`)
  const roundsText = value("--rounds")
  const rounds = roundsText === undefined ? 10 : Number(roundsText)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error(usage)
  const onlyText = value("--only")
  const only = onlyText?.split(",")
  if (only?.some((s) => !(SCENARIOS as ReadonlyArray<string>).includes(s))) throw new Error(usage)
  return { rounds, only: only === undefined ? undefined : new Set(only as Array<Scenario>) }
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))
const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n\n`))

/** A scenario's section, or the section saying how it failed; interruption is not caught. */
const section = (title: string, scenario: Effect.Effect<string, unknown>) =>
  Effect.gen(function*() {
    yield* progress(`${title}…`)
    const started = performance.now()
    const markdown = yield* scenario.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Effect.succeed(`## ${title}\n\n**This scenario failed:**\n\n\`\`\`\n${Cause.pretty(cause)}\n\`\`\``)
      )
    )
    const seconds = (performance.now() - started) / 1000
    yield* progress(`${title} done in ${seconds.toFixed(1)} s`)
    yield* print(markdown)
    return `${markdown}\n\n(This section took ${seconds.toFixed(0)} s.)`
  })

const main = ({ only, rounds }: Options) =>
  Effect.gen(function*() {
    const wanted = (scenario: Scenario) => only === undefined || only.has(scenario)
    if (process.getuid?.() !== 0) {
      return yield* Effect.fail("the benchmarks need root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run `sudo npm run bench`")
    }
    const stale = staleBundle(root)
    if (stale?.includes("missing")) return yield* Effect.fail(stale)
    const firejail = detectFirejail()
    const cni = detectCni()
    const started = performance.now()
    const half = Math.ceil(rounds / 2)

    const header = [
      "# netjail benchmarks",
      "",
      `Generated by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString()}, ${rounds} rounds` +
      ` (sections 2, 3, 5, 9: ${half}; section 4: ${Math.ceil(rounds / 4)} batches per level).` +
      " Times are wall-clock; medians of process runs vary by ±20 % between runs on a busy 2-core machine." +
      " Each table row counts the runs whose answer was checked right (\"runs\", the only ones timed) and the wrong ones" +
      " (\"wrong\"); \"netjail/peer\" is netjail's median over that row's." +
      ` Child processes run without ${REMOVED_FROM_ENVIRONMENT.join(", ")}` +
      `${REMOVED_FROM_ENVIRONMENT.some((name) => process.env[name] !== undefined) ? " (set here: it adds a CA-bundle parse, ~50 ms, to every Node start)" : ""}.` +
      " Everything runs in network namespaces the bench creates (prefix njb-) with addresses from 198.18.0.0/15 and 10.20.0.0/16" +
      " (simulated only), deleted at the end, also on failure or interruption.",
      "",
      markdownTable(["machine", ""], describeMachine(root, firejail, cni)),
      ...(stale === undefined ? [] : ["", `**Warning:** ${stale}.`]),
      ...(firejail.installed ? [] : ["", `**Warning:** ${firejail.reason}; the firejail rows are skipped.`]),
      ...(cni.installed ? [] : ["", `**Warning:** ${cni.reason}; the CNI rows are skipped.`])
    ].join("\n")
    yield* print(header)

    let labInode: number | undefined
    /** Namespace inodes are reused, so a segment directory may predate the lab. */
    let leasesBefore = new Map<string, Array<string>>()
    const sections = yield* Effect.scoped(Effect.gen(function*() {
      const lab: Lab = yield* Effect.acquireRelease(
        Effect.sync(createLab).pipe(Effect.tap((l) => progress(`lab ${l.name} is up (br0 198.18.0.1/24, peers ${l.peers.map((p) => p.address).join(", ")})`))),
        (l) =>
          Effect.sync(() => {
            const failed = deleteAllNamespaces()
            process.stderr.write(
              failed.length === 0 ? `bench: lab ${l.name} deleted\n` : `bench: could not delete: ${failed.join("; ")}\n`
            )
          })
      )
      labInode = lab.inode
      leasesBefore = leftoverLeases(lab.inode)
      const version = netjailVersion(root)
      const scenarios: Record<Scenario, readonly [string, () => Effect.Effect<string, unknown>]> = {
        "1": ["1. A sandbox on br0", () => bridged(root, lab, rounds, firejail, cni)],
        "2": ["2. A crowded /24", () => crowded(root, lab, half, firejail)],
        "3": ["3. A full subnet", () => fullSubnet(root, lab, half, firejail)],
        "4": ["4. Concurrent starts", () => concurrent(root, lab, Math.ceil(rounds / 4), firejail, cni)],
        "5": ["5. A noisy segment", () => noisy(root, lab, half, firejail)],
        "6": ["6. CLI start-up", () => startup(root, lab, rounds, version)],
        "6b": ["6b. Start-up profile", () => startupProfile(root, Math.min(rounds, 5))],
        "7": ["7. CNI", () => Effect.succeed(cniSection(cni, lab))],
        "8": ["8. The simulated network", () => simulated(rounds)],
        "9": ["9. Peak memory", () => memory(root, lab, half, firejail)],
        "10": ["10. In-process setup", () => inProcessSetup(lab, rounds * 3)]
      }
      const done = new Map<Scenario, string>()
      for (const id of RUN_ORDER) {
        if (!wanted(id)) continue
        const [title, scenario] = scenarios[id]
        done.set(id, yield* section(title, scenario()))
      }
      return SCENARIOS.flatMap((id) => (done.has(id) ? [done.get(id)!] : []))
    }))

    const leftovers = leftoverNamespaces()
    const leasesAfter = labInode === undefined ? new Map<string, Array<string>>() : leftoverLeases(labInode)
    const newEntries = [...leasesAfter].flatMap(([directory, entries]) =>
      entries.filter((e) => !(leasesBefore.get(directory) ?? []).includes(e)).map((e) => `${directory}/${e}`)
    )
    const newDirectories = [...leasesAfter.keys()].filter((d) => !leasesBefore.has(d))
    const footer = [
      "## Run",
      "",
      `Whole run: ${((performance.now() - started) / 1000).toFixed(1)} s. Load average at the end: ${loadAverage()}.`,
      leftovers.length === 0
        ? `After clean-up \`ip netns list\` shows no ${LAB_PREFIX} namespace.`
        : `**After clean-up \`ip netns list\` still shows:** ${leftovers.join(", ")}.`,
      newEntries.length > 0
        ? `**netjail's runs left lease entries:** ${newEntries.join(", ")}.`
        : newDirectories.length > 0
        ? `netjail's runs left no lease entry; the empty lease-segment directories ${newDirectories.join(", ")} remain (netjail's state; not removed by the bench).`
        : "netjail's runs left no lease entry for the lab's bridges."
    ].join("\n")
    yield* print(footer)
    if (only === undefined) {
      writeFileSync(RESULTS, [header, ...sections, footer].join("\n\n") + "\n")
      yield* progress(`wrote ${fileURLToPath(RESULTS)}`)
    } else {
      yield* progress("--only: bench/RESULTS.md left as it was")
    }
  })

const SIGNAL_STATUS: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 }

const start = () => {
  let options: Options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`)
    process.exit((error as { status?: number }).status ?? 2)
  }
  // The last resort: whatever the Effect finalizers did not get to.
  process.on("exit", () => {
    killRunning()
    deleteAllNamespaces()
  })
  const fiber = Effect.runFork(main(options))
  let signalled: string | undefined
  for (const signal of Object.keys(SIGNAL_STATUS)) {
    process.on(signal, () => {
      if (signalled !== undefined) return void process.stderr.write("bench: still cleaning up, please wait\n")
      signalled = signal
      process.stderr.write(`bench: ${signal}: stopping the running scenario and deleting the lab\n`)
      fiber.unsafeInterruptAsFork(fiber.id())
    })
  }
  fiber.addObserver((exit) => {
    if (Exit.isSuccess(exit)) return process.exit(0)
    if (Cause.isInterruptedOnly(exit.cause)) return process.exit(SIGNAL_STATUS[signalled ?? "SIGINT"] ?? 130)
    const failure = Cause.failureOption(exit.cause)
    process.stderr.write(`bench: ${failure._tag === "Some" ? String(failure.value) : Cause.pretty(exit.cause)}\n`)
    process.exit(1)
  })
}

start()
