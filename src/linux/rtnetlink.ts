/**
 * The rtnetlink wire format: building request messages and reading replies.
 * Pure bytes in, bytes out; netlink uses host byte order except for IPv4 addresses.
 */
import { endianness } from "node:os"

// ---- constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h) -------------------

export const NLMSG_ERROR = 2
export const NLMSG_DONE = 3

export const RTM_NEWLINK = 16
export const RTM_DELLINK = 17
export const RTM_GETLINK = 18
export const RTM_NEWADDR = 20
export const RTM_GETADDR = 22
export const RTM_NEWROUTE = 24
export const RTM_GETROUTE = 26

export const NLM_F_REQUEST = 0x1
export const NLM_F_MULTI = 0x2
export const NLM_F_ACK = 0x4
export const NLM_F_EXCL = 0x200
export const NLM_F_CREATE = 0x400
export const NLM_F_DUMP = 0x300
/** On an NLMSG_ERROR: the echoed request is cut to its header (NETLINK_CAP_ACK). */
export const NLM_F_CAPPED = 0x100
/** On an NLMSG_ERROR or NLMSG_DONE: extended-ack attributes follow (NETLINK_EXT_ACK). */
export const NLM_F_ACK_TLVS = 0x200

export const NLMSGERR_ATTR_MSG = 1
export const NLMSGERR_ATTR_OFFS = 2

export const NLA_F_NESTED = 0x8000
const NLA_TYPE_MASK = 0x3fff

export const IFLA_ADDRESS = 1
export const IFLA_IFNAME = 3
export const IFLA_MTU = 4
export const IFLA_LINK = 5
export const IFLA_MASTER = 10
export const IFLA_LINKINFO = 18
export const IFLA_NET_NS_FD = 28
export const IFLA_INFO_KIND = 1
export const IFLA_INFO_DATA = 2
export const VETH_INFO_PEER = 1
export const IFLA_MACVLAN_MODE = 1
export const MACVLAN_MODE_BRIDGE = 4
export const IFLA_IPVLAN_MODE = 1
export const IPVLAN_MODE_L2 = 0
export const IFF_UP = 0x1

export const IFA_ADDRESS = 1
export const IFA_LOCAL = 2
export const IFA_BROADCAST = 4

export const RTA_DST = 1
export const RTA_OIF = 4
export const RTA_GATEWAY = 5
export const RTA_TABLE = 15
export const RT_TABLE_MAIN = 254
export const RTPROT_BOOT = 3
export const RT_SCOPE_UNIVERSE = 0
export const RTN_UNICAST = 1

const messageNames: Record<number, string> = {
  [RTM_NEWLINK]: "RTM_NEWLINK",
  [RTM_DELLINK]: "RTM_DELLINK",
  [RTM_GETLINK]: "RTM_GETLINK",
  [RTM_NEWADDR]: "RTM_NEWADDR",
  [RTM_GETADDR]: "RTM_GETADDR",
  [RTM_NEWROUTE]: "RTM_NEWROUTE",
  [RTM_GETROUTE]: "RTM_GETROUTE"
}
export const messageName = (type: number): string => messageNames[type] ?? `netlink message ${type}`

// ---- encoding --------------------------------------------------------------------------

const LE = endianness() === "LE"
const HEADER = 16
const align = (n: number): number => (n + 3) & ~3
const viewOf = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** One attribute: its length counts the header and value but not the padding that follows. */
export const bytes = (type: number, value: Uint8Array): Uint8Array => {
  const out = new Uint8Array(align(4 + value.length))
  const view = viewOf(out)
  view.setUint16(0, 4 + value.length, LE)
  view.setUint16(2, type, LE)
  out.set(value, 4)
  return out
}

const scalar = (size: number, write: (view: DataView) => void): Uint8Array => {
  const out = new Uint8Array(size)
  write(viewOf(out))
  return out
}
export const u8 = (type: number, value: number) => bytes(type, Uint8Array.of(value))
export const u16 = (type: number, value: number) => bytes(type, scalar(2, (v) => v.setUint16(0, value, LE)))
export const u32 = (type: number, value: number) => bytes(type, scalar(4, (v) => v.setUint32(0, value, LE)))
/** Strings go with their NUL: the kernel rejects an IFLA_IFNAME without one. */
export const string = (type: number, value: string) =>
  bytes(type, concat([new TextEncoder().encode(value), Uint8Array.of(0)]))
/** Parts are already-encoded attributes, or (for VETH_INFO_PEER) a fixed header and attributes. */
export const nested = (type: number, ...parts: ReadonlyArray<Uint8Array>) => bytes(type | NLA_F_NESTED, concat(parts))

export interface LinkHeader {
  readonly family?: number
  readonly type?: number
  readonly index?: number
  readonly flags?: number
  /** The IFF_* bits the request means to change; the others in `flags` are ignored. */
  readonly change?: number
}
export const ifinfomsg = (h: LinkHeader = {}): Uint8Array =>
  scalar(16, (v) => {
    v.setUint8(0, h.family ?? 0)
    v.setUint16(2, h.type ?? 0, LE)
    v.setInt32(4, h.index ?? 0, LE)
    v.setUint32(8, h.flags ?? 0, LE)
    v.setUint32(12, h.change ?? 0, LE)
  })

export interface AddressHeader {
  readonly family: number
  readonly prefix?: number
  readonly flags?: number
  readonly scope?: number
  readonly index?: number
}
export const ifaddrmsg = (h: AddressHeader): Uint8Array =>
  scalar(8, (v) => {
    v.setUint8(0, h.family)
    v.setUint8(1, h.prefix ?? 0)
    v.setUint8(2, h.flags ?? 0)
    v.setUint8(3, h.scope ?? 0)
    v.setUint32(4, h.index ?? 0, LE)
  })

export interface RouteHeader {
  readonly family: number
  readonly dstLen?: number
  readonly srcLen?: number
  readonly tos?: number
  readonly table?: number
  readonly protocol?: number
  readonly scope?: number
  readonly type?: number
  readonly flags?: number
}
export const rtmsg = (h: RouteHeader): Uint8Array =>
  scalar(12, (v) => {
    ;[h.family, h.dstLen, h.srcLen, h.tos, h.table, h.protocol, h.scope, h.type].forEach((b, i) =>
      v.setUint8(i, b ?? 0)
    )
    v.setUint32(8, h.flags ?? 0, LE)
  })

/** A request before it is given a sequence number by the socket that sends it. */
export interface Request {
  readonly type: number
  readonly flags: number
  readonly payload: Uint8Array
}
export const request = (type: number, flags: number, ...parts: ReadonlyArray<Uint8Array>): Request => ({
  type,
  flags,
  payload: concat(parts)
})

export const encode = (req: Request, seq: number, portId = 0): Uint8Array => {
  const out = new Uint8Array(align(HEADER + req.payload.length))
  const view = viewOf(out)
  view.setUint32(0, HEADER + req.payload.length, LE)
  view.setUint16(4, req.type, LE)
  view.setUint16(6, req.flags, LE)
  view.setUint32(8, seq, LE)
  view.setUint32(12, portId, LE)
  out.set(req.payload, HEADER)
  return out
}

// ---- decoding --------------------------------------------------------------------------

export interface Message {
  readonly type: number
  readonly flags: number
  readonly seq: number
  readonly portId: number
  readonly payload: Uint8Array
}

/** Splits one received datagram into its messages; a truncated tail is a bug, not data. */
export const decodeMessages = (buffer: Uint8Array): Array<Message> => {
  const view = viewOf(buffer)
  const messages: Array<Message> = []
  for (let offset = 0; offset + HEADER <= buffer.length; ) {
    const length = view.getUint32(offset, LE)
    if (length < HEADER || offset + length > buffer.length) throw new Error("malformed netlink message")
    messages.push({
      type: view.getUint16(offset + 4, LE),
      flags: view.getUint16(offset + 6, LE),
      seq: view.getUint32(offset + 8, LE),
      portId: view.getUint32(offset + 12, LE),
      payload: buffer.subarray(offset + HEADER, offset + length)
    })
    offset += align(length)
  }
  return messages
}

/** Attributes by type (nested flag masked off); the first of a repeated type wins. */
export type Attributes = ReadonlyMap<number, Uint8Array>

export const decodeAttributes = (buffer: Uint8Array): Attributes => {
  const view = viewOf(buffer)
  const attributes = new Map<number, Uint8Array>()
  for (let offset = 0; offset + 4 <= buffer.length; ) {
    const length = view.getUint16(offset, LE)
    if (length < 4 || offset + length > buffer.length) break
    const type = view.getUint16(offset + 2, LE) & NLA_TYPE_MASK
    if (!attributes.has(type)) attributes.set(type, buffer.subarray(offset + 4, offset + length))
    offset += align(length)
  }
  return attributes
}

export const readU8 = (value: Uint8Array): number => value[0]!
export const readU16 = (value: Uint8Array): number => viewOf(value).getUint16(0, LE)
export const readU32 = (value: Uint8Array): number => viewOf(value).getUint32(0, LE)
export const readString = (value: Uint8Array): string => {
  const end = value.indexOf(0)
  return new TextDecoder().decode(end < 0 ? value : value.subarray(0, end))
}

export interface LinkInfo extends Required<LinkHeader> {
  readonly attributes: Attributes
}
export const decodeLink = (payload: Uint8Array): LinkInfo => {
  const view = viewOf(payload)
  return {
    family: view.getUint8(0),
    type: view.getUint16(2, LE),
    index: view.getInt32(4, LE),
    flags: view.getUint32(8, LE),
    change: view.getUint32(12, LE),
    attributes: decodeAttributes(payload.subarray(16))
  }
}

export interface AddressInfo extends Required<AddressHeader> {
  readonly attributes: Attributes
}
export const decodeAddress = (payload: Uint8Array): AddressInfo => ({
  family: payload[0]!,
  prefix: payload[1]!,
  flags: payload[2]!,
  scope: payload[3]!,
  index: viewOf(payload).getUint32(4, LE),
  attributes: decodeAttributes(payload.subarray(8))
})

export interface RouteInfo extends Required<RouteHeader> {
  readonly attributes: Attributes
}
export const decodeRoute = (payload: Uint8Array): RouteInfo => {
  const [family, dstLen, srcLen, tos, table, protocol, scope, type] = payload
  return {
    family: family!,
    dstLen: dstLen!,
    srcLen: srcLen!,
    tos: tos!,
    table: table!,
    protocol: protocol!,
    scope: scope!,
    type: type!,
    flags: viewOf(payload).getUint32(8, LE),
    attributes: decodeAttributes(payload.subarray(12))
  }
}

/** The kernel's verdict: errno 0 is an ack; `message` is its extended-ack explanation. */
export interface Verdict {
  readonly errno: number
  readonly message: string | undefined
  readonly offset: number | undefined
}

/**
 * Reads an NLMSG_ERROR (error, the echoed request, then TLVs) or an NLMSG_DONE
 * (error, then TLVs right away). The echo is the whole request unless capped.
 */
export const decodeVerdict = (message: Message): Verdict => {
  const { payload, flags } = message
  // `| 0` turns the -0 of an ack into 0.
  const errno = payload.length >= 4 ? -viewOf(payload).getInt32(0, LE) | 0 : 0
  let tlvStart = 4
  if (message.type === NLMSG_ERROR) {
    const echoed = payload.length >= 4 + HEADER ? viewOf(payload).getUint32(4, LE) : HEADER
    tlvStart += flags & NLM_F_CAPPED ? HEADER : align(echoed)
  }
  const tlvs = flags & NLM_F_ACK_TLVS ? decodeAttributes(payload.subarray(tlvStart)) : new Map<number, Uint8Array>()
  const text = tlvs.get(NLMSGERR_ATTR_MSG)
  const offset = tlvs.get(NLMSGERR_ATTR_OFFS)
  return {
    errno,
    message: text === undefined ? undefined : readString(text),
    offset: offset === undefined ? undefined : readU32(offset)
  }
}
