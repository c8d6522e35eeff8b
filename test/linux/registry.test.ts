/**
 * The lease registry on the real kernel: concurrent starts of the real CLI
 * get distinct addresses without queueing behind each other's probe windows,
 * a static address is granted once, and a crashed owner's or a damaged lease
 * never blocks an address for good.
 */
import { execFile } from "node:child_process"
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Option } from "effect"
import { layerLinux, makeConfig, Sandbox, Subnet } from "netjail"
import { describeKernel, lab, type Lab } from "./lab.js"

const cli = new URL("../../dist/netjail.mjs", import.meta.url).pathname

interface Outcome {
  readonly code: number | null
  readonly stderr: string
}

/** The bundled CLI inside the lab namespace. */
const netjail = (l: Lab, ...args: Array<string>) =>
  Effect.async<Outcome>((resume) => {
    const child = execFile("ip", ["netns", "exec", l.name, process.execPath, cli, ...args], (error, _stdout, stderr) =>
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const addressOf = (outcome: Outcome): string => JSON.parse(outcome.stderr.trim().split("\n").at(-1)!).interfaces[0].address

/** A run directory of the test's own, so nothing here sees another test's leases. */
const runDirectory = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = join(tmpdir(), `njt-run-${process.pid}-${Math.random().toString(36).slice(2)}`)
    mkdirSync(dir, { recursive: true })
    return dir
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const collect = (into: Array<string>) =>
  Logger.make(({ message }) => void into.push((Array.isArray(message) ? message : [message]).map(String).join(" ")))

const leaseDir = (dir: string, l: Lab) => join(dir, "leases", `${statSync(l.path).ino}-br0`)

describeKernel("the lease registry", () => {
  describe("concurrent CLI starts", () => {
    it.live("20 at once on one bridge all succeed with distinct addresses, none a peer's", () =>
      Effect.gen(function*() {
        const l = yield* lab
        l.bridge("br0", "10.10.20.1/24")
        const peers = ["10.10.20.2", "10.10.20.3", "10.10.20.4"]
        peers.forEach((p, i) => l.peer("br0", String(i), `${p}/24`))
        const outcomes = yield* Effect.all(
          Array.from({ length: 20 }, () => netjail(l, "--json", "--arp-timeout=200", "--net=br0", "--", "sleep", "1")),
          { concurrency: "unbounded" }
        )
        expect(outcomes.map((o) => o.code)).toEqual(Array(20).fill(0))
        const addresses = outcomes.map(addressOf)
        expect(new Set(addresses).size).toBe(20)
        for (const a of addresses) {
          expect(peers.map((p) => `${p}/24`)).not.toContain(a)
          expect(a).not.toBe("10.10.20.1/24")
        }
        // every sandbox is gone: only the peers' ports are left on the bridge
        expect(l.linkNames()).toEqual(["br0", "lo", "p0", "p1", "p2"])
      }).pipe(Effect.scoped), 120_000)

    it.live("two starts asking for one static address at once: exactly one succeeds", () =>
      Effect.gen(function*() {
        const l = yield* lab
        l.bridge("br0", "10.10.20.1/24")
        const [a, b] = yield* Effect.all([
          netjail(l, "--json", "--arp-timeout=300", "--net=br0", "--ip=10.10.20.50", "--", "sleep", "1"),
          netjail(l, "--json", "--arp-timeout=300", "--net=br0", "--ip=10.10.20.50", "--", "sleep", "1")
        ], { concurrency: "unbounded" })
        expect([a!.code, b!.code].sort()).toEqual([0, 1])
        const loser = a!.code === 1 ? a! : b!
        expect(loser.stderr).toContain("Error: IP address 10.10.20.50 is already in use")
      }).pipe(Effect.scoped))
  })

  describe("recovery", () => {
    const runWith = (l: Lab, dir: string, range: string) =>
      Effect.scoped(Sandbox.run(makeConfig({
        interfaces: [{ device: "br0", iprange: { start: range, end: "10.10.20.9" } }],
        probe: { probes: 1, window: 50 }
      })).pipe(Effect.map((s) => Option.getOrThrow(Option.map(s.interfaces[0]!.address, Subnet.format)))))
        .pipe(Effect.provide(layerLinux({ hostNamespace: l.path, runDirectory: dir })))

    it.live("a SIGKILLed owner's lease is reclaimed by the next start", () =>
      Effect.gen(function*() {
        const l = yield* lab
        l.bridge("br0", "10.10.20.1/24")
        const dir = yield* runDirectory
        mkdirSync(leaseDir(dir, l), { recursive: true })
        // a lease left by a netjail that no longer exists, on the only two candidates
        for (const address of ["10.10.20.8", "10.10.20.9"]) {
          writeFileSync(join(leaseDir(dir, l), address), JSON.stringify({
            segment: `${statSync(l.path).ino}-br0`,
            address,
            state: "active",
            owner: { pid: 999_999_999, startTime: "1" },
            device: "br0",
            hostVeth: "vethgone0eth0"
          }))
        }
        expect(yield* runWith(l, dir, "10.10.20.8")).toMatch(/^10\.10\.20\.[89]\/24$/)
        // the run released its lease; the dead owner's are gone too
        expect(readdirSync(leaseDir(dir, l))).toEqual([])
      }).pipe(Effect.scoped))

    it.live("a truncated or garbage lease entry is reported and removed, never blocks the address", () =>
      Effect.gen(function*() {
        const l = yield* lab
        l.bridge("br0", "10.10.20.1/24")
        const dir = yield* runDirectory
        mkdirSync(leaseDir(dir, l), { recursive: true })
        writeFileSync(join(leaseDir(dir, l), "10.10.20.8"), "{\"segment\": \"12-br0\", \"addr")
        writeFileSync(join(leaseDir(dir, l), "10.10.20.9"), "\u0000\u0001garbage")
        const warnings: Array<string> = []
        const address = yield* runWith(l, dir, "10.10.20.8").pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, collect(warnings)))
        )
        expect(address).toMatch(/^10\.10\.20\.[89]\/24$/)
        expect(warnings.join("\n")).toContain("is unreadable")
        expect(readdirSync(leaseDir(dir, l))).toEqual([])
      }).pipe(Effect.scoped))
  })
})
