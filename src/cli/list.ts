/**
 * `netjail list`: the running sandboxes, read from the lease registry, the
 * way `firejail --list` and `--net.print` serve firejail users.
 */
import { readFileSync } from "node:fs"
import { Effect } from "effect"
import * as Ipv4 from "../domain/Ipv4.js"
import { type Lease, Registry } from "../services/Registry.js"
import { startTimeOf } from "../linux/registry.js"

/** The owner's command line, or why there is none. */
const commandOf = (lease: Lease): string => {
  if (startTimeOf(lease.owner.pid) !== lease.owner.startTime) return "(netjail is gone; the next start removes this lease)"
  try {
    return readFileSync(`/proc/${lease.owner.pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ")
  } catch {
    return ""
  }
}

const row = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>) =>
  cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()

export const list = (json: boolean) =>
  Effect.gen(function*() {
    const { leases, problems } = yield* (yield* Registry).list
    const sorted = [...leases].sort((a, b) => a.owner.pid - b.owner.pid || a.address - b.address)
    if (json) {
      const out = sorted.map((l) => ({
        pid: l.owner.pid,
        device: l.device,
        interface: l.interface ?? null,
        address: Ipv4.format(l.address),
        state: l.state,
        hostVeth: l.hostVeth ?? null,
        command: commandOf(l)
      }))
      yield* Effect.sync(() => process.stdout.write(JSON.stringify({ sandboxes: out, problems }) + "\n"))
      return 0
    }
    const header = ["PID", "DEVICE", "IFACE", "ADDRESS", "STATE", "HOST END", "COMMAND"]
    // a start still probing holds candidates for a moment: not a sandbox yet
    const rows = sorted.filter((l) => l.state === "active").map((l) => [
      String(l.owner.pid),
      l.device,
      l.interface ?? "-",
      Ipv4.format(l.address),
      l.state,
      l.hostVeth ?? "-",
      commandOf(l)
    ])
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
    const lines = [row(header, widths), ...rows.map((r) => row(r, widths)), ...problems.map((p) => `Warning: ${p}`)]
    yield* Effect.sync(() => process.stdout.write((rows.length === 0 ? "no sandboxes\n" : lines.join("\n") + "\n")))
    return 0
  })
