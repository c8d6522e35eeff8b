/**
 * Section 9: peak memory per sandbox. Each tool starts one sandbox on br0
 * running `sleep 1`; while it runs, the bench walks its process tree every
 * 20 ms (/proc/<pid>/task/<tid>/children) and reads each process's VmHWM
 * (peak resident set) from /proc/<pid>/status. The sandboxed command (`sleep`)
 * is left out. netjail is one Node process; firejail is several C processes
 * (the parent, the sandbox's init, short-lived helpers), so both their sum
 * (an upper bound: shared pages count once per process) and the largest are
 * shown. `node` idling for 1 s is the floor of any Node program.
 */
import { readdirSync, readFileSync } from "node:fs"
import { Effect } from "effect"
import { BRIDGE, BRIDGE_ADDRESS, inLab, type Lab, PEER_ADDRESSES } from "./lab.js"
import type { Firejail } from "./machine.js"
import { startProcess } from "./processes.js"
import { markdownTable, summarize } from "./stats.js"
import { firejailArgs, netjailArgs, SETTLE_MILLIS } from "./tools.js"

const SAMPLE_MILLIS = 20
const COMMAND = ["sleep", "1"]

interface Seen {
  name: string
  hwmKiB: number
}

const status = (pid: number): { name: string; hwmKiB: number } | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8")
    const name = /^Name:\s+(.*)$/m.exec(text)?.[1] ?? "?"
    const hwm = Number(/^VmHWM:\s+(\d+) kB$/m.exec(text)?.[1] ?? 0)
    return { name, hwmKiB: hwm }
  } catch {
    return undefined
  }
}

const children = (pid: number): Array<number> => {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
      } catch {
        return []
      }
    })
  } catch {
    return []
  }
}

/** Samples the tree under `root` until stopped; per pid its last name and its highest VmHWM. */
const sampler = (root: number) => {
  const seen = new Map<number, Seen>()
  const sample = () => {
    const queue = [root]
    while (queue.length > 0) {
      const pid = queue.shift()!
      const s = status(pid)
      if (s !== undefined) {
        const before = seen.get(pid)
        seen.set(pid, { name: s.name, hwmKiB: Math.max(before?.hwmKiB ?? 0, s.hwmKiB) })
      }
      queue.push(...children(pid))
    }
  }
  sample()
  const timer = setInterval(sample, SAMPLE_MILLIS)
  return { seen, stop: () => clearInterval(timer) }
}

interface Peak {
  readonly sumKiB: number
  readonly largestKiB: number
  readonly processes: number
}

const measure = (lab: Lab, args: ReadonlyArray<string>, command: string) =>
  Effect.scoped(Effect.gen(function*() {
    const started = yield* startProcess(inLab(lab, args).command, inLab(lab, args).args, { limitMillis: 30_000 })
    const tree = yield* Effect.acquireRelease(Effect.sync(() => sampler(started.pid)), (t) => Effect.sync(t.stop))
    const finished = yield* started.closed
    if (finished.code !== 0) {
      return yield* Effect.fail(`${started.line}: exit ${finished.code ?? finished.signal}: ${finished.stderr.trim().slice(-300)}`)
    }
    // a process whose last name is the command's is the command (or its fork before the exec): not the tool
    const tool = [...tree.seen.values()].filter((s) => s.name !== command)
    return {
      sumKiB: tool.reduce((n, s) => n + s.hwmKiB, 0),
      largestKiB: Math.max(0, ...tool.map((s) => s.hwmKiB)),
      processes: tool.length
    } satisfies Peak
  }))

const mib = (kib: number | undefined) => (kib === undefined ? "—" : `${(kib / 1024).toFixed(1)} MiB`)

export const memory = (root: string, lab: Lab, rounds: number, firejail: Firejail) =>
  Effect.gen(function*() {
    const tools = [
      { name: `netjail --net=${BRIDGE} -- ${COMMAND.join(" ")}`, args: netjailArgs(root, BRIDGE, [], COMMAND), unavailable: undefined },
      {
        name: `firejail --noprofile --net=${BRIDGE} -- ${COMMAND.join(" ")}`,
        args: firejailArgs(BRIDGE, [], COMMAND),
        unavailable: firejail.installed ? undefined : firejail.reason
      },
      { name: "node -e 'setTimeout(() => {}, 1000)' (the floor)", args: [process.execPath, "-e", "setTimeout(() => {}, 1000)"], unavailable: undefined }
    ]
    const live = tools.filter((t) => t.unavailable === undefined)
    const peaks = new Map<string, Array<Peak>>()
    const failures: Array<string> = []
    for (let round = 0; round < rounds; round++) {
      for (const tool of live.map((_, i) => live[(i + round) % live.length]!)) {
        yield* Effect.sleep(`${SETTLE_MILLIS} millis`)
        const peak = yield* Effect.either(measure(lab, tool.args, COMMAND[0]!))
        if (peak._tag === "Left") failures.push(`- **${tool.name}**: ${String(peak.left)}`)
        else peaks.set(tool.name, [...(peaks.get(tool.name) ?? []), peak.right])
      }
    }
    const cells = (values: ReadonlyArray<number>) => {
      const s = summarize(values)
      return [mib(s?.median), mib(s?.min), mib(s?.max)]
    }
    const netjailSum = summarize((peaks.get(tools[0]!.name) ?? []).map((p) => p.sumKiB))
    return [
      `## 9. Peak memory per sandbox (${rounds} rounds, rotating order)`,
      "",
      `One sandbox on ${BRIDGE} (${BRIDGE_ADDRESS}/24, peers ${PEER_ADDRESSES.join(", ")}) running \`${COMMAND.join(" ")}\`.` +
      ` The bench walks the tool's process tree every ${SAMPLE_MILLIS} ms and keeps each process's VmHWM (its peak resident` +
      " set, shared pages included); the sandboxed command is left out. \"sum\" adds the peaks of all the tool's processes" +
      " (an upper bound of the tool's peak: pages shared between firejail's forks count once per process); \"largest\" is" +
      " the biggest single process. Short-lived helpers can be missed between two samples.",
      "",
      markdownTable(
        ["tool", "runs", "sum: median", "min", "max", "largest process: median", "processes seen", "netjail/this (sum, median)"],
        tools.map((tool) => {
          if (tool.unavailable !== undefined) return [tool.name, "0", "—", "—", "—", "—", "—", "not run: " + tool.unavailable]
          const list = peaks.get(tool.name) ?? []
          const sum = summarize(list.map((p) => p.sumKiB))
          return [
            tool.name,
            String(list.length),
            ...cells(list.map((p) => p.sumKiB)),
            mib(summarize(list.map((p) => p.largestKiB))?.median),
            String(summarize(list.map((p) => p.processes))?.median ?? "—"),
            tool === tools[0] || sum === undefined || netjailSum === undefined ? "" : `${(netjailSum.median / sum.median).toFixed(2)}×`
          ]
        })
      ),
      ...(failures.length === 0 ? [] : ["", ...failures])
    ].join("\n")
  })
