/**
 * The Linux Arp layer against real hosts: peers in their own namespaces on a
 * bridge inside a lab namespace; `ip neigh` is the independent oracle for announce.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Option } from "effect"
import * as Ipv4 from "../../src/domain/Ipv4.js"
import * as libc from "../../src/linux/libc.js"
import { withNamespacePath } from "../../src/linux/netnsWindow.js"
import { BROADCAST, makeArp, sockaddrLl } from "../../src/linux/arp.js"
import { describeKernel, type Lab, lab } from "./lab.js"

const ip = (text: string) => Option.getOrThrow(Ipv4.parse(text))
const BRIDGE_MAC = "02:00:00:00:00:01"

/** br0 10.10.20.1/24 with peers a .2, b .3, c .4; returns their MACs. */
const segment = (l: Lab) => {
  l.bridge("br0", "10.10.20.1/24", BRIDGE_MAC)
  return {
    a: l.peer("br0", "a", "10.10.20.2/24"),
    b: l.peer("br0", "b", "10.10.20.3/24"),
    c: l.peer("br0", "c", "10.10.20.4/24")
  }
}
const peerPath = (l: Lab, id: string) => `/run/netns/${l.name}-${id}`

/** An ARP payload built independently of the code under test. */
const arpFrame = (oper: number, sha: string, spa: string, tpa: string): Uint8Array =>
  Uint8Array.from([
    0, 1, 8, 0, 6, 4, 0, oper,
    ...sha.split(":").map((h) => parseInt(h, 16)),
    ...spa.split(".").map(Number),
    0, 0, 0, 0, 0, 0,
    ...tpa.split(".").map(Number)
  ])

/** Broadcasts raw ARP frames from `device` in the namespace at `path`, the way a noisy host would. */
const broadcastFrames = (path: string, device: string, frames: ReadonlyArray<Uint8Array>, times: number) => {
  const { fd, ifindex } = withNamespacePath(path, () => ({
    fd: libc.socket(libc.AF_PACKET, libc.SOCK_DGRAM, 0),
    ifindex: libc.ifNametoindex(device)
  }))
  try {
    const to = sockaddrLl(ifindex, BROADCAST)
    for (let i = 0; i < times; i++) for (const frame of frames) libc.sendto(fd, frame, to)
  } finally {
    libc.close(fd)
  }
}

describeKernel("linux Arp", () => {
  describe("probe", () => {
    it.scopedLive("reports exactly the live targets, with their MACs, after every window", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const macs = segment(l)
        const arp = makeArp({ hostNamespace: l.path })
        const window = Duration.millis(120)
        const started = yield* Clock.currentTimeMillis
        const claims = yield* arp.probe({
          endpoint: { device: "br0" },
          targets: ["10.10.20.2", "10.10.20.3", "10.10.20.4", "10.10.20.50", "10.10.20.51"].map(ip),
          probes: 2,
          window
        })
        const elapsed = (yield* Clock.currentTimeMillis) - started
        expect(new Map([...claims].map(([k, v]) => [Ipv4.format(k), v]))).toEqual(
          new Map([
            ["10.10.20.2", { mac: macs.a, by: "reply" }],
            ["10.10.20.3", { mac: macs.b, by: "reply" }],
            ["10.10.20.4", { mac: macs.c, by: "reply" }]
          ])
        )
        // Every window is read to its end, dead targets included.
        expect(elapsed).toBeGreaterThanOrEqual(2 * Duration.toMillis(window))
      }))

    it.scopedLive("a whole /24 of candidates on one socket", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const macs = segment(l)
        const arp = makeArp({ hostNamespace: l.path })
        const targets = Array.from({ length: 253 }, (_, i) => ip(`10.10.20.${i + 2}`))
        const claims = yield* arp.probe({ endpoint: { device: "br0" }, targets, probes: 1, window: Duration.millis(200) })
        expect([...claims.keys()].map(Ipv4.format).sort()).toEqual(["10.10.20.2", "10.10.20.3", "10.10.20.4"])
        expect(claims.get(ip("10.10.20.3"))?.mac).toBe(macs.b)
      }))

    it.scopedLive("another host probing for the same address during our window is a conflict (by probe)", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const macs = segment(l)
        const arp = makeArp({ hostNamespace: l.path })
        const rival = yield* Effect.fork(
          Effect.sleep(Duration.millis(30)).pipe(
            Effect.zipRight(Effect.sync(() =>
              broadcastFrames(peerPath(l, "b"), "eth0", [arpFrame(1, macs.b, "0.0.0.0", "10.10.20.77")], 1)
            ))
          )
        )
        const claims = yield* arp.probe({
          endpoint: { device: "br0" },
          targets: [ip("10.10.20.77"), ip("10.10.20.78")],
          probes: 2,
          window: Duration.millis(100)
        })
        yield* Fiber.join(rival)
        expect([...claims]).toEqual([[ip("10.10.20.77"), { mac: macs.b, by: "probe" }]])
      }))

    it.scopedLive("two instances probing one address at once never both find it free", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const macs = segment(l)
        const ours = makeArp({ hostNamespace: l.path })
        const theirs = makeArp({ hostNamespace: peerPath(l, "b") })
        const request = { targets: [ip("10.10.20.77")], probes: 3, window: Duration.millis(100) }
        const [seenByUs, seenByThem] = yield* Effect.all([
          ours.probe({ ...request, endpoint: { device: "br0" } }),
          theirs.probe({ ...request, endpoint: { device: "eth0" } })
        ], { concurrency: 2 })
        // Once a side has seen the other's probe it stops probing that address,
        // so which side sees which depends on timing; both finding it free must not happen.
        expect(seenByUs.size + seenByThem.size).toBeGreaterThan(0)
        if (seenByUs.size > 0) expect(seenByUs.get(ip("10.10.20.77"))).toEqual({ mac: macs.b, by: "probe" })
        if (seenByThem.size > 0) expect(seenByThem.get(ip("10.10.20.77"))).toEqual({ mac: BRIDGE_MAC, by: "probe" })
      }))

    it.scopedLive("a noisy neighbour makes no free address taken and no taken address free", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const macs = segment(l)
        const arp = makeArp({ hostNamespace: l.path })
        const noise = [
          // someone asking for our candidate is not using it (RFC 5227 §2.1.1)
          arpFrame(1, macs.c, "10.10.20.4", "10.10.20.88"),
          // replies and announces for other addresses
          arpFrame(2, macs.c, "10.10.20.4", "10.10.20.88"),
          arpFrame(1, macs.c, "10.10.20.4", "10.10.20.4"),
          // probes for other addresses
          ...Array.from({ length: 20 }, (_, i) => arpFrame(1, macs.c, "0.0.0.0", `10.10.20.${120 + i}`)),
          // frames claiming our own MAC are ours by definition and must be ignored
          arpFrame(2, BRIDGE_MAC, "10.10.20.88", "10.10.20.1")
        ]
        const flood = yield* Effect.fork(
          Effect.repeatN(Effect.sync(() => broadcastFrames(peerPath(l, "c"), "eth0", noise, 10)).pipe(
            Effect.zipRight(Effect.sleep(Duration.millis(5)))
          ), 60)
        )
        const claims = yield* arp.probe({
          endpoint: { device: "br0" },
          targets: [ip("10.10.20.2"), ip("10.10.20.88")],
          probes: 3,
          window: Duration.millis(100)
        })
        yield* Fiber.interrupt(flood)
        expect([...claims]).toEqual([[ip("10.10.20.2"), { mac: macs.a, by: "reply" }]])
      }))

    it.scopedLive("windows end on time even when the caller is uninterruptible", () =>
      Effect.gen(function*() {
        const l = yield* lab
        segment(l)
        const arp = makeArp({ hostNamespace: l.path })
        const claims = yield* Effect.uninterruptible(
          arp.probe({ endpoint: { device: "br0" }, targets: [ip("10.10.20.99")], probes: 2, window: Duration.millis(50) })
        )
        expect(claims.size).toBe(0)
        expect(yield* Effect.uninterruptible(arp.awaitAnswer({ device: "br0" }, ip("10.10.20.99"), Duration.millis(300))))
          .toBe(false)
      }))

    it.scopedLive("a missing device is a KernelError (ENODEV)", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const arp = makeArp({ hostNamespace: l.path })
        const error = yield* Effect.flip(
          arp.probe({ endpoint: { device: "nosuch0" }, targets: [ip("10.10.20.2")], probes: 1, window: Duration.millis(10) })
        )
        expect(error._tag).toBe("KernelError")
        expect(error.code).toBe("ENODEV")
      }))
  })

  describe("awaitAnswer", () => {
    it.scopedLive("true as soon as a live peer answers, false for a silent address", () =>
      Effect.gen(function*() {
        const l = yield* lab
        segment(l)
        const arp = makeArp({ hostNamespace: l.path })
        const started = yield* Clock.currentTimeMillis
        expect(yield* arp.awaitAnswer({ device: "br0" }, ip("10.10.20.2"), Duration.seconds(5))).toBe(true)
        // Far below the timeout: it returned on the answer, not at the deadline.
        expect((yield* Clock.currentTimeMillis) - started).toBeLessThan(5000)
        const silent = yield* Clock.currentTimeMillis
        expect(yield* arp.awaitAnswer({ device: "br0" }, ip("10.10.20.60"), Duration.millis(500))).toBe(false)
        expect((yield* Clock.currentTimeMillis) - silent).toBeGreaterThanOrEqual(500)
      }))

    it.scopedLive("an address that comes up during the wait is seen (resend)", () =>
      Effect.gen(function*() {
        const l = yield* lab
        segment(l)
        const late = yield* Effect.fork(Effect.sleep(Duration.millis(400)).pipe(
          Effect.zipRight(Effect.sync(() => l.ip("addr", "add", "10.10.20.61/24", "dev", "br0")))
        ))
        // br0 itself gets the address, so ask from peer a's side.
        const fromPeer = makeArp({ hostNamespace: peerPath(l, "a") })
        expect(yield* fromPeer.awaitAnswer({ device: "eth0" }, ip("10.10.20.61"), Duration.seconds(3))).toBe(true)
        yield* Fiber.join(late)
      }))
  })

  describe("announce", () => {
    it.scopedLive("updates a neighbour's stale cache entry to the announcer's MAC", () =>
      Effect.gen(function*() {
        const l = yield* lab
        const macs = segment(l)
        // Linux only refreshes existing entries from gratuitous ARP (arp_accept=0), so plant a wrong one.
        l.ip("neigh", "replace", "10.10.20.3", "lladdr", "02:99:99:99:99:99", "dev", "br0", "nud", "stale")
        const fromB = makeArp({ hostNamespace: peerPath(l, "b") })
        yield* fromB.announce({ device: "eth0" }, ip("10.10.20.3"))
        const entry = () =>
          l.json<Array<{ dst: string; lladdr?: string }>>("neigh", "show", "dev", "br0").find((n) => n.dst === "10.10.20.3")
        const deadline = (yield* Clock.currentTimeMillis) + 2000
        while (entry()?.lladdr !== macs.b && (yield* Clock.currentTimeMillis) < deadline) {
          yield* Effect.sleep(Duration.millis(20))
        }
        expect(entry()?.lladdr).toBe(macs.b)
      }))
  })
})
