/**
 * The rtnetlink codec against exact byte layouts. The expected bytes are written
 * little-endian, as on every machine netjail targets (x86_64, aarch64).
 */
import { describe, expect, it } from "@effect/vitest"
import { endianness } from "node:os"
import * as Rtnl from "../../src/linux/rtnetlink.js"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const fromHex = (text: string) => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ""), "hex"))

describe("rtnetlink codec", () => {
  it("runs on a little-endian host", () => {
    expect(endianness()).toBe("LE")
  })

  describe("attributes", () => {
    it("u8, u16 and u32 are padded to 4 bytes, the length excluding the padding", () => {
      expect(hex(Rtnl.u8(7, 0xab))).toBe("0500" + "0700" + "ab000000")
      expect(hex(Rtnl.u16(1, 0x1234))).toBe("0600" + "0100" + "34120000")
      expect(hex(Rtnl.u32(4, 1400))).toBe("0800" + "0400" + "78050000")
    })

    it("strings end in a NUL byte", () => {
      // "eth0" + NUL = 5 bytes of value, length 9, padded to 12
      expect(hex(Rtnl.string(Rtnl.IFLA_IFNAME, "eth0"))).toBe("0900" + "0300" + "6574683000" + "000000")
      // exactly 3 characters + NUL need no padding
      expect(hex(Rtnl.string(1, "abc"))).toBe("0800" + "0100" + "61626300")
    })

    it("bytes keep their order (IPv4 in network order)", () => {
      expect(hex(Rtnl.bytes(Rtnl.RTA_GATEWAY, Uint8Array.of(10, 10, 20, 1)))).toBe("0800" + "0500" + "0a0a1401")
      expect(hex(Rtnl.bytes(1, Uint8Array.of(2, 0, 0, 0, 0, 1)))).toBe("0a00" + "0100" + "020000000001" + "0000")
    })

    it("nested attributes set NLA_F_NESTED and wrap their children", () => {
      const inner = Rtnl.string(Rtnl.IFLA_INFO_KIND, "veth")
      const outer = Rtnl.nested(Rtnl.IFLA_LINKINFO, inner)
      expect(hex(outer)).toBe("1000" + "1280" + hex(inner))
      expect(hex(inner)).toBe("0900" + "0100" + "7665746800" + "000000")
    })

    it("decodes attributes, masking the nested flag and skipping padding", () => {
      const buffer = Rtnl.concat([
        Rtnl.string(Rtnl.IFLA_IFNAME, "br0"),
        Rtnl.u32(Rtnl.IFLA_MTU, 1500),
        Rtnl.nested(Rtnl.IFLA_LINKINFO, Rtnl.string(Rtnl.IFLA_INFO_KIND, "bridge")),
        Rtnl.u8(99, 1)
      ])
      const attributes = Rtnl.decodeAttributes(buffer)
      expect([...attributes.keys()]).toEqual([Rtnl.IFLA_IFNAME, Rtnl.IFLA_MTU, Rtnl.IFLA_LINKINFO, 99])
      expect(Rtnl.readString(attributes.get(Rtnl.IFLA_IFNAME)!)).toBe("br0")
      expect(Rtnl.readU32(attributes.get(Rtnl.IFLA_MTU)!)).toBe(1500)
      expect(Rtnl.readU8(attributes.get(99)!)).toBe(1)
      const info = Rtnl.decodeAttributes(attributes.get(Rtnl.IFLA_LINKINFO)!)
      expect(Rtnl.readString(info.get(Rtnl.IFLA_INFO_KIND)!)).toBe("bridge")
    })

    it("keeps the first of a repeated type and stops at a malformed tail", () => {
      const buffer = Rtnl.concat([Rtnl.u16(1, 1), Rtnl.u16(1, 2), fromHex("ff00 0200")])
      const attributes = Rtnl.decodeAttributes(buffer)
      expect(attributes.size).toBe(1)
      expect(Rtnl.readU16(attributes.get(1)!)).toBe(1)
    })
  })

  describe("fixed headers", () => {
    it("ifinfomsg is 16 bytes: family, pad, type, index, flags, change", () => {
      const bytes = Rtnl.ifinfomsg({ index: 7, flags: Rtnl.IFF_UP, change: Rtnl.IFF_UP })
      expect(hex(bytes)).toBe("00" + "00" + "0000" + "07000000" + "01000000" + "01000000")
      expect(Rtnl.decodeLink(bytes)).toMatchObject({ family: 0, type: 0, index: 7, flags: 1, change: 1 })
    })

    it("ifaddrmsg is 8 bytes: family, prefix, flags, scope, index", () => {
      const bytes = Rtnl.ifaddrmsg({ family: 2, prefix: 24, index: 3 })
      expect(hex(bytes)).toBe("02" + "18" + "00" + "00" + "03000000")
      expect(Rtnl.decodeAddress(bytes)).toMatchObject({ family: 2, prefix: 24, flags: 0, scope: 0, index: 3 })
    })

    it("rtmsg is 12 bytes: eight u8 fields and u32 flags", () => {
      const header = { family: 2, table: 254, protocol: 3, scope: 0, type: 1 }
      const bytes = Rtnl.rtmsg(header)
      expect(hex(bytes)).toBe("02" + "00" + "00" + "00" + "fe" + "03" + "00" + "01" + "00000000")
      expect(Rtnl.decodeRoute(bytes)).toMatchObject({ ...header, dstLen: 0, srcLen: 0, tos: 0, flags: 0 })
    })
  })

  describe("messages", () => {
    it("nlmsghdr carries the unpadded length, type, flags, seq and port", () => {
      const req = Rtnl.request(Rtnl.RTM_GETLINK, Rtnl.NLM_F_REQUEST | Rtnl.NLM_F_ACK, Rtnl.ifinfomsg())
      expect(hex(Rtnl.encode(req, 0x01020304, 9))).toBe(
        "20000000" + "1200" + "0500" + "04030201" + "09000000" + "00".repeat(16)
      )
    })

    it("the veth create flags are 0x605", () => {
      const flags = Rtnl.NLM_F_REQUEST | Rtnl.NLM_F_ACK | Rtnl.NLM_F_CREATE | Rtnl.NLM_F_EXCL
      expect(flags).toBe(0x605)
    })

    it("round-trips several messages in one buffer, each aligned to 4 bytes", () => {
      const first = Rtnl.request(Rtnl.RTM_NEWLINK, 2, Rtnl.ifinfomsg({ index: 1 }), Rtnl.u8(1, 5))
      const second = Rtnl.request(Rtnl.RTM_NEWADDR, 2, Rtnl.ifaddrmsg({ family: 2 }))
      const buffer = Rtnl.concat([Rtnl.encode(first, 1), Rtnl.encode(second, 2)])
      const messages = Rtnl.decodeMessages(buffer)
      expect(messages.map((m) => [m.type, m.flags, m.seq, m.payload.length])).toEqual([
        [Rtnl.RTM_NEWLINK, 2, 1, 24],
        [Rtnl.RTM_NEWADDR, 2, 2, 8]
      ])
      const link = Rtnl.decodeLink(messages[0]!.payload)
      expect(link.index).toBe(1)
      expect(Rtnl.readU8(link.attributes.get(1)!)).toBe(5)
    })

    it("refuses a message whose length runs past the buffer", () => {
      const encoded = Rtnl.encode(Rtnl.request(Rtnl.RTM_GETLINK, 1, Rtnl.ifinfomsg()), 1)
      expect(() => Rtnl.decodeMessages(encoded.subarray(0, 20))).toThrow(/malformed/)
    })

    it("the veth pair's peer is an ifinfomsg followed by attributes, inside LINKINFO/DATA/PEER", () => {
      const peer = Rtnl.nested(Rtnl.VETH_INFO_PEER, Rtnl.ifinfomsg(), Rtnl.string(Rtnl.IFLA_IFNAME, "eth0"))
      const info = Rtnl.nested(Rtnl.IFLA_LINKINFO, Rtnl.string(Rtnl.IFLA_INFO_KIND, "veth"), Rtnl.nested(2, peer))
      const linkInfo = Rtnl.decodeAttributes(Rtnl.decodeAttributes(info).get(Rtnl.IFLA_LINKINFO)!)
      const data = Rtnl.decodeAttributes(linkInfo.get(Rtnl.IFLA_INFO_DATA)!)
      const peerLink = Rtnl.decodeLink(data.get(Rtnl.VETH_INFO_PEER)!)
      expect(peerLink.flags).toBe(0)
      expect(Rtnl.readString(peerLink.attributes.get(Rtnl.IFLA_IFNAME)!)).toBe("eth0")
    })
  })

  describe("verdicts", () => {
    const errorMessage = (flags: number, payload: Uint8Array): Rtnl.Message =>
      Rtnl.decodeMessages(Rtnl.encode({ type: Rtnl.NLMSG_ERROR, flags, payload }, 5))[0]!

    const errorCode = (errno: number) => {
      const bytes = new Uint8Array(4)
      new DataView(bytes.buffer).setInt32(0, -errno, true)
      return bytes
    }

    it("an ack is error 0", () => {
      const echoed = Rtnl.encode(Rtnl.request(Rtnl.RTM_NEWLINK, 5), 5).subarray(0, 16)
      const verdict = Rtnl.decodeVerdict(errorMessage(Rtnl.NLM_F_CAPPED, Rtnl.concat([errorCode(0), echoed])))
      expect(verdict).toEqual({ errno: 0, message: undefined, offset: undefined })
    })

    it("a capped error with ext-ack TLVs gives errno, text and offset", () => {
      const echoed = Rtnl.encode(Rtnl.request(Rtnl.RTM_NEWLINK, 0x605, Rtnl.ifinfomsg()), 5).subarray(0, 16)
      const payload = Rtnl.concat([
        errorCode(34),
        echoed,
        Rtnl.string(Rtnl.NLMSGERR_ATTR_MSG, "Attribute failed policy validation"),
        Rtnl.u32(Rtnl.NLMSGERR_ATTR_OFFS, 32)
      ])
      const verdict = Rtnl.decodeVerdict(errorMessage(Rtnl.NLM_F_CAPPED | Rtnl.NLM_F_ACK_TLVS, payload))
      expect(verdict).toEqual({ errno: 34, message: "Attribute failed policy validation", offset: 32 })
    })

    it("an uncapped error skips the whole echoed request before the TLVs", () => {
      // 21 bytes of request, padded to 24 in the echo
      const echoed = Rtnl.encode(Rtnl.request(Rtnl.RTM_NEWLINK, 0x605, Rtnl.u8(3, 1).subarray(0, 5)), 5)
      expect(new DataView(echoed.buffer).getUint32(0, true)).toBe(21)
      const payload = Rtnl.concat([errorCode(17), echoed, Rtnl.string(Rtnl.NLMSGERR_ATTR_MSG, "exists")])
      expect(Rtnl.decodeVerdict(errorMessage(Rtnl.NLM_F_ACK_TLVS, payload))).toEqual({
        errno: 17,
        message: "exists",
        offset: undefined
      })
    })

    it("without NLM_F_ACK_TLVS the trailing bytes are not read as text", () => {
      const echoed = Rtnl.encode(Rtnl.request(Rtnl.RTM_DELLINK, 5), 5)
      const payload = Rtnl.concat([errorCode(19), echoed, Rtnl.string(Rtnl.NLMSGERR_ATTR_MSG, "ignored")])
      expect(Rtnl.decodeVerdict(errorMessage(0, payload)).message).toBeUndefined()
    })

    it("NLMSG_DONE carries an error and TLVs right after it", () => {
      const payload = Rtnl.concat([errorCode(2), Rtnl.string(Rtnl.NLMSGERR_ATTR_MSG, "ipv4: FIB table does not exist")])
      const done = Rtnl.decodeMessages(
        Rtnl.encode({ type: Rtnl.NLMSG_DONE, flags: Rtnl.NLM_F_MULTI | Rtnl.NLM_F_ACK_TLVS, payload }, 1)
      )[0]!
      expect(Rtnl.decodeVerdict(done)).toEqual({ errno: 2, message: "ipv4: FIB table does not exist", offset: undefined })
    })
  })
})
