import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Option, Schema } from "effect"
import { makeConfig, SandboxConfig } from "../../src/domain/Config.js"
import * as Errors from "../../src/domain/errors.js"
import * as Ipv4 from "../../src/domain/Ipv4.js"
import * as Mac from "../../src/domain/Mac.js"
import * as Subnet from "../../src/domain/Subnet.js"
import { checkConfig } from "../../src/domain/validate.js"

const anyIp = fc.integer({ min: 0, max: 0xffffffff }).map((n) => n as Ipv4.Ipv4)
const anyPrefix = fc.integer({ min: 0, max: 32 })
const anyMac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Mac.fromBytes(b))

describe("Ipv4", () => {
  it.prop("parse ∘ format is the identity", [anyIp], ([ip]) => {
    expect(Ipv4.parse(Ipv4.format(ip))).toEqual(Option.some(ip))
  })
  it.prop("bytes round-trip in network order", [anyIp], ([ip]) => {
    expect(Ipv4.fromBytes(Ipv4.toBytes(ip))).toBe(ip)
    expect(Ipv4.toBytes(ip)[0]).toBe(ip >>> 24)
  })
  it("refuses what firejail's sscanf let through", () => {
    for (const bad of ["10.0.0.5/24", "1.2.3.4xyz", " 1.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.04", ""]) {
      expect(Ipv4.parse(bad), bad).toEqual(Option.none())
    }
  })
  it("decodes through Schema", () => {
    expect(Schema.decodeSync(Ipv4.Ipv4FromString)("10.10.20.1")).toBe(0x0a0a1401)
    expect(Either.isLeft(Schema.decodeEither(Ipv4.Ipv4FromString)("10.10.20"))).toBe(true)
  })
})

describe("Subnet", () => {
  it.prop("parse ∘ format is the identity", [anyIp, anyPrefix], ([ip, prefix]) => {
    const cidr = Subnet.make(ip, prefix)
    expect(Subnet.parse(Subnet.format(cidr))).toEqual(Option.some(cidr))
  })
  it.prop("contains agrees with arithmetic", [anyIp, anyPrefix, anyIp], ([ip, prefix, other]) => {
    const cidr = Subnet.make(ip, prefix)
    const size = 2 ** (32 - prefix)
    const expected = Math.floor(other / size) === Math.floor(ip / size)
    expect(Subnet.contains(cidr, other)).toBe(expected)
  })
  it.prop("host ranges exclude network and broadcast", [anyIp, fc.integer({ min: 0, max: 30 })], ([ip, prefix]) => {
    const cidr = Subnet.make(ip, prefix)
    expect(Subnet.isHost(cidr, Subnet.network(cidr))).toBe(false)
    expect(Subnet.isHost(cidr, Subnet.broadcast(cidr))).toBe(false)
    expect(Subnet.isHost(cidr, Subnet.firstHost(cidr))).toBe(true)
    expect(Subnet.isHost(cidr, Subnet.lastHost(cidr))).toBe(true)
    expect(Subnet.hostCount(cidr)).toBe(2 ** (32 - prefix) - 2)
  })
  it.prop("masks: prefix ↔ mask, and non-contiguous masks are refused", [anyPrefix], ([prefix]) => {
    expect(Subnet.prefixOfMask(Subnet.maskOf(prefix))).toEqual(Option.some(prefix))
    expect(Subnet.prefixOfMask(Ipv4.fromOctets([255, 0, 255, 0]))).toEqual(Option.none())
  })
})

describe("Mac", () => {
  it.prop("parse ∘ format is the identity", [anyMac], ([mac]) => {
    expect(Mac.parse(mac)).toEqual(Option.some(mac))
    expect(Mac.fromBytes(Mac.toBytes(mac))).toBe(mac)
  })
  it("normalises firejail's one-digit groups and detects multicast", () => {
    expect(Mac.parse("0:1:22:A:b:C")).toEqual(Option.some("00:01:22:0a:0b:0c"))
    expect(Mac.isMulticast(Mac.parse("01:00:5e:00:00:01").pipe(Option.getOrThrow))).toBe(true)
    expect(Mac.isMulticast(Mac.parse("00:11:22:33:44:55").pipe(Option.getOrThrow))).toBe(false)
    expect(Mac.parse("00:11:22:33:44")).toEqual(Option.none())
  })
})

describe("SandboxConfig", () => {
  it("decodes an embedder's JSON with firejail's defaults", () => {
    const config = Schema.decodeUnknownSync(SandboxConfig)({ interfaces: [{ device: "br0", address: { _tag: "Static", address: "10.0.0.5" } }] })
    expect(config.probe.probes).toBe(2)
    expect(config.interfaces[0]!.ipvlan).toBe(false)
    expect(config.lockTimeout).toBeUndefined()
  })

  const failsWith = (input: Parameters<typeof makeConfig>[0], tag: Errors.ConfigError["_tag"], message: string) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(checkConfig(makeConfig(input)))
      expect(error._tag).toBe(tag)
      expect(error.message).toContain(message)
      expect(Errors.exitCodeFor(error)).toBe(1)
    })

  it.effect("checks what needs no kernel, with firejail's messages", () =>
    Effect.gen(function*() {
      yield* failsWith({ interfaces: [{ device: "lo" }] }, "LoopbackDevice", "cannot attach to lo device")
      yield* failsWith({ interfaces: [{ device: "br0", mtu: 575 }] }, "InvalidMtu", "invalid mtu value")
      yield* failsWith({ interfaces: [{ device: "br0", mtu: 9199 }] }, "InvalidMtu", "invalid mtu value")
      yield* failsWith({ interfaces: [{ device: "br0", mac: "01:00:5e:00:00:01" }] }, "InvalidMacAddress", "invalid MAC address (multicast)")
      yield* failsWith({ interfaces: [{ device: "br0", iprange: { start: "10.0.0.9", end: "10.0.0.2" } }] }, "InvalidIpRange", "invalid IP range")
      yield* failsWith({ interfaces: [{ device: "br0", vethName: "a-name-that-is-too-long" }] }, "InvalidVethName", "at most 15 bytes")
      yield* failsWith({ defaultGateway: "10.0.0.1" }, "DefaultGatewayWithoutNetwork", "option --defaultgw requires at least one network or one interface to be configured")
    }))
})
