/**
 * The two sandbox tools as contenders on one lab bridge: the bundled netjail
 * CLI (always as `node dist/netjail.mjs`, with `--json`) and Debian's
 * firejail, both run inside the lab namespace with `ip netns exec <lab>`, and
 * each run checked against what the segment allows.
 */
import { join } from "node:path"
import { Either } from "effect"
import {
  both,
  type Expected,
  firejailReport,
  type FirejailReport,
  NO_FREE_ADDRESS,
  netjailReport,
  type NetjailReport
} from "./checks.js"
import type { Contender } from "./compare.js"
import { inLab, type Lab } from "./lab.js"
import type { Finished } from "./processes.js"

export const netjailArgs = (root: string, bridge: string, options: ReadonlyArray<string>, command: ReadonlyArray<string>) => [
  process.execPath,
  join(root, "dist/netjail.mjs"),
  "--json",
  `--net=${bridge}`,
  ...options,
  "--",
  ...command
]

export const firejailArgs = (bridge: string, options: ReadonlyArray<string>, command: ReadonlyArray<string>) => [
  "firejail",
  "--noprofile",
  `--net=${bridge}`,
  ...options,
  "--",
  ...command
]

const label = (tool: string, bridge: string, options: ReadonlyArray<string>, command: ReadonlyArray<string>) =>
  [tool, `--net=${bridge}`, ...options, "--", ...command].join(" ")

export const netjailOn = (
  root: string,
  lab: Lab,
  bridge: string,
  expected: Expected,
  options: ReadonlyArray<string> = [],
  command: ReadonlyArray<string> = ["true"]
): Contender<NetjailReport> => ({
  label: label("netjail", bridge, options, command),
  ...inLab(lab, netjailArgs(root, bridge, options, command)),
  check: (f) => netjailReport(expected)(f.stderr)
})

export const firejailOn = (
  lab: Lab,
  bridge: string,
  expected: Expected,
  options: ReadonlyArray<string> = [],
  command: ReadonlyArray<string> = ["true"]
): Contender<FirejailReport> => ({
  label: label("firejail --noprofile", bridge, options, command),
  ...inLab(lab, firejailArgs(bridge, options, command)),
  check: (f) => firejailReport(expected)(both(f))
})

/**
 * For a subnet with no free address: the right answer is exit 1 with the
 * "all of them are in use" message; an exit 0 (an address handed out) is a
 * wrong answer, any other exit a failed run.
 */
export const expectingNoAddress = <A>(contender: Contender<A>): Contender<void> => ({
  ...contender,
  completed: (f: Finished) => f.code === 0 || f.code === 1,
  check: (f) =>
    f.code === 1 && both(f).includes(NO_FREE_ADDRESS)
      ? Either.right(undefined)
      : f.code === 0
      ? Either.left(`handed out an address although every one is held: ${
        Either.getOrElse(Either.map(contender.check(f), (r) => JSON.stringify(r)), (why) => why)
      }`)
      : Either.left(`exit 1 without the expected message: ${both(f).trim().slice(-300)}`)
})

/**
 * Untimed pause before each run: firejail leaves its namespace (and with it its
 * veth and the sandbox address) for the kernel to tear down after it exits, and
 * a run started at once can find the address still answering (measured: 2 of 12
 * back-to-back `firejail --ip=X` runs failed with "IP address X is already in use").
 */
export const SETTLE_MILLIS = 250
