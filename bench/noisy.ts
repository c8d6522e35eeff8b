/**
 * Section 5: a noisy, nearly full segment. A bridge (br3, 198.18.3.1/24), one
 * peer host whose kernel holds every address but six, and a noisy peer at .254
 * that sends about 400 broadcast ARP frames a second (the generator of the
 * kernel tests, test/linux/fixtures/arpNoise.ts, run with `node --import tsx`):
 * requests from its own address, and gratuitous announcements and broadcast
 * replies for three of the six addresses, which it thereby claims, although
 * no kernel answers probes for them (a host using an address it does not
 * defend). Three addresses are really free. A run that hands out a held or
 * claimed address is wrong.
 */
import { join } from "node:path"
import { Effect } from "effect"
import { type Expected, hostAddresses } from "./checks.js"
import { compareAll, notes, type Outcome, outcomeRows, problems, runnerOf, table } from "./compare.js"
import { addHost, addSegment, type Lab, removeHost, removeSegment, type Segment } from "./lab.js"
import type { Firejail } from "./machine.js"
import { startProcess } from "./processes.js"
import { firejailOn, netjailOn, SETTLE_MILLIS } from "./tools.js"

export const NOISY: Segment = { bridge: "br3", cidr: "198.18.3.1/24" }
const NOISY_MAC = "02:00:00:00:03:01"
const NOISE_ADDRESS = "198.18.3.254"
const UNHELD = [23, 77, 131, 178, 202, 249].map((o) => `198.18.3.${o}`)
/** Claimed by the noisy peer's traffic only; the lowest unheld address is one of them. */
const CLAIMED = [23, 131, 202].map((o) => `198.18.3.${o}`)
export const NOISE_RATE = 400

const rxPackets = (lab: Lab, port: string): number =>
  (JSON.parse(lab.ip("-json", "-s", "link", "show", port)) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64.rx.packets

export const noisy = (root: string, lab: Lab, rounds: number, firejail: Firejail) =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(Effect.sync(() => addSegment(lab, NOISY, NOISY_MAC)), () => Effect.sync(() => removeSegment(lab, NOISY)))
    const bridgeAddress = NOISY.cidr.split("/")[0]!
    const kernelHeld = hostAddresses(NOISY.cidr).filter((a) => a !== bridgeAddress && a !== NOISE_ADDRESS && !UNHELD.includes(a))
    yield* Effect.acquireRelease(
      Effect.sync(() => addHost(lab, NOISY.bridge, "held", kernelHeld, 24)),
      (host) => Effect.sync(() => removeHost(host))
    )
    const noiseHost = yield* Effect.acquireRelease(
      Effect.sync(() => addHost(lab, NOISY.bridge, "noise", [NOISE_ADDRESS], 24)),
      (host) => Effect.sync(() => removeHost(host))
    )
    const claimable = [...CLAIMED, NOISE_ADDRESS].map((a) => a.split(".")[3]).join(",")
    const generator = join(root, "test/linux/fixtures/arpNoise.ts")
    const noise = yield* startProcess(
      "ip",
      ["netns", "exec", noiseHost.namespace, process.execPath, "--import", "tsx", generator, "eth0", NOISE_ADDRESS, claimable, String(NOISE_RATE)],
      { cwd: root, readyWhen: (o) => o.stdout.includes("ready"), limitMillis: 20_000 }
    )
    yield* noise.ready
    const framesBefore = rxPackets(lab, noiseHost.port)
    const started = performance.now()

    const expected: Expected = { bridgeCidr: NOISY.cidr, held: new Set([...kernelHeld, ...CLAIMED, NOISE_ADDRESS]) }
    const [ours, theirs] = yield* compareAll(
      runnerOf(netjailOn(root, lab, NOISY.bridge, expected)),
      [runnerOf(firejailOn(lab, NOISY.bridge, expected))],
      rounds,
      { peersUnavailable: [firejail.installed ? undefined : firejail.reason], settleMillis: SETTLE_MILLIS }
    )
    const seconds = (performance.now() - started) / 1000
    const rate = (rxPackets(lab, noiseHost.port) - framesBefore) / seconds
    const stillRunning = noise.output().stderr.trim()

    const handedOut = (o: Outcome<{ readonly address: string }>) => {
      const counts = new Map<string, number>()
      for (const e of o.extras) counts.set(e.address, (counts.get(e.address) ?? 0) + 1)
      return [...counts].map(([a, n]) => `${a} ×${n}`).join(", ") || "none"
    }
    return [
      `## 5. A noisy segment with few free addresses (${rounds} rounds, rotating order)`,
      "",
      `A bridge ${NOISY.bridge} (${NOISY.cidr}); one peer host whose kernel holds ${kernelHeld.length} addresses` +
      ` (all but ${UNHELD.map((a) => `.${a.split(".")[3]}`).join(", ")} and the noisy peer's .254); and a noisy peer at .254` +
      ` sending about ${NOISE_RATE} broadcast ARP frames a second (test/linux/fixtures/arpNoise.ts): half are requests from its own` +
      ` address for any host of the /24, half are gratuitous announcements and broadcast replies for` +
      ` ${CLAIMED.map((a) => `.${a.split(".")[3]}`).join(", ")}, addresses it uses without answering probes for them (no kernel holds them).` +
      ` Really free: ${UNHELD.filter((a) => !CLAIMED.includes(a)).map((a) => `.${a.split(".")[3]}`).join(", ")}.` +
      " \"wrong\" counts the runs that handed out a held or a claimed address (the warm-up run included): firejail" +
      " reads only replies addressed to its probe, so an address claimed by announcements alone looks free to it, and" +
      " its scan meets the lowest such address (.23) first; netjail counts an announcement or a reply from the address" +
      ` as a claim (RFC 5227). The lab's port to the noisy peer received ${Math.round(rate)} frames a second during the runs.`,
      "",
      table(outcomeRows("6 unheld, 3 of them claimed by noise", [ours, theirs])),
      ...notes(problems([ours, theirs])),
      "",
      `Right answers handed out: netjail ${handedOut(ours)}; firejail ${handedOut(theirs)}.`,
      ...(stillRunning === "" ? [] : ["", `The noise generator wrote on stderr: ${stillRunning}`])
    ].join("\n")
  }).pipe(Effect.scoped)
