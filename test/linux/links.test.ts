/**
 * The Linux Links layer on the real kernel, inside lab namespaces: every
 * operation is checked against `ip -json` as the independent oracle.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import type { DeviceNotFound, IpvlanUnsupported, KernelError } from "../../src/domain/errors.js"
import * as Ipv4 from "../../src/domain/Ipv4.js"
import type * as Mac from "../../src/domain/Mac.js"
import * as Subnet from "../../src/domain/Subnet.js"
import * as handle from "../../src/linux/handle.js"
import * as libc from "../../src/linux/libc.js"
import { bringUp, makeLinks } from "../../src/linux/links.js"
import type { SandboxNamespace } from "../../src/services/Namespaces.js"
import { describeKernel, lab, labExists } from "./lab.js"

const ip4 = (text: string) => Option.getOrThrow(Ipv4.parse(text))
const cidr = (text: string) => Option.getOrThrow(Subnet.parse(text))
const mac = (text: string) => text as Mac.Mac

const ipJson = (namespace: string, ...args: ReadonlyArray<string>): any =>
  JSON.parse(execFileSync("ip", ["-json", "-n", namespace, ...args], { encoding: "utf8", stdio: "pipe" }))

/**
 * A sandbox namespace as the Namespaces layer hands it over: held by an fd
 * registered in the handle table, and named here so `ip -n` can look inside.
 */
const sandbox = Effect.acquireRelease(
  Effect.sync(() => {
    const name = `njt-${randomBytes(4).toString("hex")}`
    execFileSync("ip", ["netns", "add", name], { stdio: "pipe" })
    let fd: number
    try {
      fd = libc.open(`/run/netns/${name}`, libc.O_RDONLY)
    } catch (error) {
      execFileSync("ip", ["netns", "del", name], { stdio: "pipe" })
      throw error
    }
    const namespace: SandboxNamespace = { id: name }
    handle.register(namespace, fd)
    return { name, fd, namespace, json: (...args: ReadonlyArray<string>) => ipJson(name, ...args) }
  }),
  ({ fd, name, namespace }) =>
    Effect.sync(() => {
      handle.unregister(namespace)
      libc.close(fd)
      execFileSync("ip", ["netns", "del", name], { stdio: "pipe" })
    })
)

/** A lab with br0 (10.10.20.1/24) and the Links layer working inside it. */
const bridgeLab = Effect.gen(function* () {
  const l = yield* lab
  l.bridge("br0", "10.10.20.1/24")
  const links = yield* makeLinks({ hostNamespace: l.path })
  return { lab: l, links }
})

const failure = <A, E>(effect: Effect.Effect<A, E>) => Effect.flip(effect)

describeKernel("Links on the Linux kernel", () => {
  describe("readDevice", () => {
    it.scopedLive("reads a bridge: index, kind, MAC, MTU and its address", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const device = yield* links.readDevice("br0")
        const [oracle] = lab.json("link", "show", "br0")
        expect(device).toEqual({
          name: "br0",
          index: oracle.ifindex,
          kind: "bridge",
          mac: "02:00:00:00:00:01",
          mtu: oracle.mtu,
          addresses: [cidr("10.10.20.1/24")]
        })
      })
    )

    it.scopedLive("reads a veth as ethernet, with no address until one is added", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        lab.ip("link", "add", "v0", "mtu", "1400", "type", "veth", "peer", "name", "v1")
        const device = yield* links.readDevice("v0")
        const [oracle] = lab.json("link", "show", "v0")
        expect(device).toMatchObject({ name: "v0", index: oracle.ifindex, kind: "ethernet", mtu: 1400 })
        expect(device.mac).toBe(oracle.address)
        expect(device.addresses).toEqual([])
        // All of them, the primary first, as firejail reads it.
        lab.ip("addr", "add", "192.168.77.9/25", "dev", "v0")
        lab.ip("addr", "add", "192.168.77.10/25", "dev", "v0")
        const addressed = yield* links.readDevice("v0")
        expect(addressed.addresses).toEqual([cidr("192.168.77.9/25"), cidr("192.168.77.10/25")])
      })
    )

    it.scopedLive("a missing device, or a name no device can have, is DeviceNotFound", () =>
      Effect.gen(function* () {
        const { links } = yield* bridgeLab
        const missing = yield* failure(links.readDevice("nosuch0"))
        expect(missing._tag).toBe("DeviceNotFound")
        expect((missing as DeviceNotFound).device).toBe("nosuch0")
        const tooLong = yield* failure(links.readDevice("averyveryverylongname"))
        expect(tooLong._tag).toBe("DeviceNotFound")
      })
    )
  })

  it.scopedLive("hostGateway: none without a default route, the gateway with one", () =>
    Effect.gen(function* () {
      const { lab, links } = yield* bridgeLab
      expect(yield* links.hostGateway).toEqual(Option.none())
      lab.ip("route", "add", "198.18.0.0/24", "via", "10.10.20.253")
      expect(yield* links.hostGateway).toEqual(Option.none())
      lab.ip("route", "add", "default", "via", "10.10.20.254")
      expect(yield* links.hostGateway).toEqual(Option.some(ip4("10.10.20.254")))
    })
  )

  it.scopedLive("hostGateway in a namespace with only lo", () =>
    Effect.gen(function* () {
      const l = yield* lab
      const links = yield* makeLinks({ hostNamespace: l.path })
      expect(yield* links.hostGateway).toEqual(Option.none())
    })
  )

  describe("veth pair", () => {
    it.scopedLive("one message: host end in br0 and up, the peer born in the sandbox with name, MTU, MAC", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        yield* links.createVethPair({
          hostName: "vnjt0",
          bridge,
          namespace: sb.namespace,
          sandboxName: "eth0",
          mtu: 1400,
          mac: mac("02:11:22:33:44:55")
        })
        const [host] = lab.json("link", "show", "vnjt0")
        expect(host.master).toBe("br0")
        expect(host.flags).toContain("UP")
        expect(host.mtu).toBe(1500)
        const [peer] = sb.json("link", "show", "eth0")
        expect(peer).toMatchObject({ ifname: "eth0", mtu: 1400, address: "02:11:22:33:44:55" })
        expect(peer.flags).not.toContain("UP")
        // Nothing of the pair stays in the lab but the host end.
        expect(lab.linkNames()).toEqual(["br0", "lo", "vnjt0"])
      })
    )

    it.scopedLive("without MTU and MAC the peer gets the kernel's defaults", () =>
      Effect.gen(function* () {
        const { links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        yield* links.createVethPair({ hostName: "vnjt1", bridge, namespace: sb.namespace, sandboxName: "eth0" })
        const [peer] = sb.json("link", "show", "eth0")
        expect(peer.mtu).toBe(1500)
        expect(peer.address).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
      })
    )

    it.scopedLive("setUp and addDefaultRoute configure the sandbox end", () =>
      Effect.gen(function* () {
        const { links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        yield* links.createVethPair({ hostName: "vnjt0", bridge, namespace: sb.namespace, sandboxName: "eth0" })
        yield* links.setUp(sb.namespace, { name: "eth0", address: Option.some(cidr("10.10.20.5/24")) })
        yield* links.addDefaultRoute(sb.namespace, ip4("10.10.20.1"))

        const [addr] = sb.json("-4", "addr", "show", "dev", "eth0")
        expect(addr.flags).toContain("UP")
        expect(addr.addr_info).toMatchObject([
          { family: "inet", local: "10.10.20.5", prefixlen: 24, broadcast: "10.10.20.255", scope: "global" }
        ])
        // -d, or iproute2 leaves out the protocol when it is boot
        const routes = sb.json("-d", "-4", "route", "show", "default")
        expect(routes).toMatchObject([{ dst: "default", gateway: "10.10.20.1", dev: "eth0", protocol: "boot" }])

        // The same route again is refused by the kernel, not silently accepted.
        const again = yield* failure(links.addDefaultRoute(sb.namespace, ip4("10.10.20.1")))
        expect(again).toMatchObject({ _tag: "KernelError", code: "EEXIST" })
      })
    )

    it.scopedLive("setUp without an address only brings the link up", () =>
      Effect.gen(function* () {
        const { links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        yield* links.createVethPair({ hostName: "vnjt0", bridge, namespace: sb.namespace, sandboxName: "eth0" })
        yield* links.setUp(sb.namespace, { name: "eth0", address: Option.none() })
        expect(sb.json("link", "show", "eth0")[0].flags).toContain("UP")
        // With -4, iproute2 lists only links that have an IPv4 address.
        expect(sb.json("-4", "addr", "show", "dev", "eth0")).toEqual([])
        const missing = yield* failure(links.setUp(sb.namespace, { name: "eth9", address: Option.none() }))
        expect(missing).toMatchObject({ _tag: "KernelError", code: "ENODEV" })
      })
    )

    it.scopedLive("deleteHostLink removes both ends; a link already gone is no error", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        yield* links.createVethPair({ hostName: "vnjt0", bridge, namespace: sb.namespace, sandboxName: "eth0" })
        yield* links.deleteHostLink("vnjt0")
        expect(lab.linkNames()).toEqual(["br0", "lo"])
        expect(sb.json("link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"])
        yield* links.deleteHostLink("vnjt0")
      })
    )

    it.scopedLive("a name already taken is EEXIST, and nothing is left behind", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        const error = yield* failure(
          links.createVethPair({ hostName: "br0", bridge, namespace: sb.namespace, sandboxName: "eth0" })
        )
        expect(error).toMatchObject({
          _tag: "KernelError",
          errno: 17,
          code: "EEXIST",
          operation: "create veth pair br0 on br0"
        })
        expect(lab.linkNames()).toEqual(["br0", "lo"])
        expect(sb.json("link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"])
      })
    )

    it.scopedLive("a name of 16 characters is refused with the kernel's explanation", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        const error = (yield* failure(
          links.createVethPair({ hostName: "vnjt0123456789ab", bridge, namespace: sb.namespace, sandboxName: "eth0" })
        )) as KernelError
        expect(error._tag).toBe("KernelError")
        expect(error.errno).toBeGreaterThan(0)
        expect(error.code).toBe(libc.errnoName(error.errno))
        expect(error.detail).toBeTruthy()
        expect(lab.linkNames()).toEqual(["br0", "lo"])
      })
    )

    it.scopedLive("an MTU the kernel refuses fails the whole message: no half-made pair", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const sb = yield* sandbox
        const bridge = yield* links.readDevice("br0")
        const error = yield* failure(
          links.createVethPair({ hostName: "vnjt0", bridge, namespace: sb.namespace, sandboxName: "eth0", mtu: 20 })
        )
        expect(error._tag).toBe("KernelError")
        expect(lab.linkNames()).toEqual(["br0", "lo"])
        expect(sb.json("link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"])
      })
    )
    it.scopedLive("a master that is no bridge fails the whole message too (unlike a later master change)", () =>
      Effect.gen(function* () {
        const { lab, links } = yield* bridgeLab
        const sb = yield* sandbox
        lab.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
        const notABridge = yield* links.readDevice("v0")
        const error = yield* failure(
          links.createVethPair({ hostName: "vnjt0", bridge: notABridge, namespace: sb.namespace, sandboxName: "eth0" })
        )
        expect(error).toMatchObject({ _tag: "KernelError", code: "EOPNOTSUPP" })
        expect(lab.linkNames()).toEqual(["br0", "lo", "v0", "v1"])
        expect(sb.json("link", "show").map((l: { ifname: string }) => l.ifname)).toEqual(["lo"])
      })
    )
  })

  describe("child links", () => {
    /** A veth end in the lab, up, as the parent an ethernet device would be. */
    const ethernetParent = Effect.gen(function* () {
      const { lab, links } = yield* bridgeLab
      lab.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
      lab.ip("link", "set", "v0", "up")
      lab.ip("link", "set", "v1", "up")
      const parent = yield* links.readDevice("v0")
      expect(parent.kind).toBe("ethernet")
      return { lab, links, parent }
    })

    it.scopedLive("macvlan in bridge mode, born in the sandbox, then configured there", () =>
      Effect.gen(function* () {
        const { lab, links, parent } = yield* ethernetParent
        const sb = yield* sandbox
        yield* links.createChildLink({
          kind: "macvlan",
          parent,
          namespace: sb.namespace,
          sandboxName: "eth1",
          mtu: 1400,
          mac: mac("02:aa:bb:cc:dd:ee")
        })
        const [child] = sb.json("-d", "link", "show", "eth1")
        expect(child).toMatchObject({ ifname: "eth1", mtu: 1400, address: "02:aa:bb:cc:dd:ee" })
        expect(child.linkinfo).toMatchObject({ info_kind: "macvlan", info_data: { mode: "bridge" } })
        expect(lab.linkNames()).toEqual(["br0", "lo", "v0", "v1"])

        yield* links.setUp(sb.namespace, { name: "eth1", address: Option.some(cidr("192.168.50.7/24")) })
        const [addr] = sb.json("-4", "addr", "show", "dev", "eth1")
        expect(addr.flags).toContain("UP")
        expect(addr.addr_info).toMatchObject([{ local: "192.168.50.7", prefixlen: 24 }])
      })
    )

    it.scopedLive("ipvlan: IpvlanUnsupported where the kernel lacks the driver, an L2 ipvlan where it has it", () =>
      Effect.gen(function* () {
        const { lab, links, parent } = yield* ethernetParent
        const sb = yield* sandbox
        const result = yield* Effect.either(
          links.createChildLink({ kind: "ipvlan", parent, namespace: sb.namespace, sandboxName: "eth1" })
        )
        // iproute2 tells independently whether this kernel knows ipvlan.
        let kernelHasIpvlan = true
        try {
          lab.ip("link", "add", "ipvtest", "link", "v0", "type", "ipvlan", "mode", "l2")
        } catch {
          kernelHasIpvlan = false
        }
        if (kernelHasIpvlan) {
          expect(Either.isRight(result)).toBe(true)
          const [child] = sb.json("-d", "link", "show", "eth1")
          expect(child.linkinfo).toMatchObject({ info_kind: "ipvlan", info_data: { mode: "l2" } })
        } else {
          expect(Either.isLeft(result)).toBe(true)
          const error = Either.getLeft(result).pipe(Option.getOrThrow) as IpvlanUnsupported
          expect(error).toMatchObject({ _tag: "IpvlanUnsupported", device: "v0" })
        }
      })
    )
  })

  it.scopedLive("bringUp brings lo up in a fresh namespace by its fd", () =>
    Effect.gen(function* () {
      const sb = yield* sandbox
      expect(sb.json("link", "show", "lo")[0].flags).not.toContain("UP")
      bringUp(sb.fd, "lo")
      expect(sb.json("link", "show", "lo")[0].flags).toContain("UP")
      expect(() => bringUp(sb.fd, "nosuch0")).toThrow(libc.SyscallError)
    })
  )

  it.scopedLive("the labs of this file are gone after their scope", () =>
    Effect.gen(function* () {
      const name = yield* Effect.scoped(Effect.map(lab, (l) => l.name))
      expect(labExists(name)).toBe(false)
    })
  )
})
