/**
 * Section 3: a full subnet. A bridge with a /27 (br2, 198.18.2.1/27: 30 host
 * addresses) and one peer host holding the 29 others, so there is nothing to
 * hand out: the time each tool takes to say "all of them are in use". A /27
 * keeps firejail's scan (one candidate after the other) short.
 */
import { Effect } from "effect"
import { type Expected, hostAddresses, NO_FREE_ADDRESS } from "./checks.js"
import { compareAll, notes, outcomeRows, problems, runnerOf, table } from "./compare.js"
import { addHost, addSegment, type Lab, removeHost, removeSegment, type Segment } from "./lab.js"
import type { Firejail } from "./machine.js"
import { expectingNoAddress, firejailOn, netjailOn, SETTLE_MILLIS } from "./tools.js"

export const FULL: Segment = { bridge: "br2", cidr: "198.18.2.1/27" }
const FULL_MAC = "02:00:00:00:02:01"

export const fullSubnet = (root: string, lab: Lab, rounds: number, firejail: Firejail) =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(Effect.sync(() => addSegment(lab, FULL, FULL_MAC)), () => Effect.sync(() => removeSegment(lab, FULL)))
    const held = hostAddresses(FULL.cidr).filter((a) => a !== FULL.cidr.split("/")[0])
    yield* Effect.acquireRelease(Effect.sync(() => addHost(lab, FULL.bridge, "full", held, 27)), (host) => Effect.sync(() => removeHost(host)))
    const expected: Expected = { bridgeCidr: FULL.cidr, held: new Set(held) }
    const outcomes = yield* compareAll(
      runnerOf(expectingNoAddress(netjailOn(root, lab, FULL.bridge, expected))),
      [runnerOf(expectingNoAddress(firejailOn(lab, FULL.bridge, expected)))],
      rounds,
      { peersUnavailable: [firejail.installed ? undefined : firejail.reason], settleMillis: SETTLE_MILLIS }
    )
    return [
      `## 3. A full subnet: time to "all of them are in use" (${rounds} rounds, rotating order)`,
      "",
      `A third bridge in the lab, ${FULL.bridge} (${FULL.cidr}, so 30 host addresses; a /27 keeps firejail's one-by-one` +
      ` scan short), and one peer host holding the other ${held.length}. The right answer is exit 1 with` +
      ` \`${NO_FREE_ADDRESS}\` (both tools use these words); an address handed out would count as wrong.` +
      " Both probe 2 × 500 ms per candidate. firejail tries 2 random candidates, then scans all of them in order," +
      " one at a time; a held candidate answers at once, so its cost per candidate is one ARP round trip plus its" +
      " per-candidate socket set-up and close (see the note under section 2's table). netjail probes a first batch of 8 and then" +
      " the other 21 at once, and each batch costs its 2 full windows even when every candidate answers in the first" +
      ` milliseconds. Untimed ${SETTLE_MILLIS} ms pause before each run.`,
      "",
      table(outcomeRows("/27, all 29 others held", outcomes)),
      ...notes(problems(outcomes))
    ].join("\n")
  }).pipe(Effect.scoped)
