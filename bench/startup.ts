/**
 * Section 6: the bundled CLI's start-up, as a user runs it: `--version` and
 * `--net=none -- true` against `node -e 0`, every command inside the lab
 * namespace through `ip netns exec <lab>`, so nothing touches the root namespace.
 */
import { join } from "node:path"
import { Effect, Either } from "effect"
import { compare, comparisonRows, type Contender, notes, problems, singleRow, table } from "./compare.js"
import { inLab, type Lab } from "./lab.js"
import { timedRun } from "./processes.js"

const ok = <A>(value: A) => Either.right<A>(value)

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
    // as firejail's own net_none test: inside, /proc/net/dev lists lo only (2 header lines + lo)
    const none = yield* compare<void, void>({
      label: "netjail --net=none -- cat /proc/net/dev",
      ...inLab(lab, [node, bundle, "--net=none", "--", "cat", "/proc/net/dev"]),
      check: (f) => {
        const lines = f.stdout.trim().split("\n")
        return lines.length === 3 && lines[2]!.trim().startsWith("lo:")
          ? ok(undefined)
          : Either.left(`the sandbox does not have lo alone: ${JSON.stringify(f.stdout.trim())}`)
      }
    }, nodeBaseline, rounds)

    return [
      `## 6. CLI start-up: the bundled dist/netjail.mjs against \`node -e 0\` (${rounds} rounds, alternating)`,
      "",
      `Every command runs as \`ip netns exec ${lab.name} …\`; the first row is that wrapper alone.` +
      " The --net=none run is checked as firejail's own net_none test checks it: /proc/net/dev inside lists lo alone." +
      " (firejail --net=none is not compared: it is the same firejail start as in section 1 without the network.)",
      "",
      table([
        singleRow("wrapper", `ip netns exec ${lab.name} true`, floor),
        ...comparisonRows("version", versionRun),
        ...comparisonRows("--net=none", none)
      ]),
      ...notes(problems([versionRun.netjail, versionRun.peer, none.netjail, none.peer]))
    ].join("\n")
  })
