/**
 * The Arp service on the real kernel: an AF_PACKET datagram socket bound to one
 * device for ARP only, opened in the endpoint's namespace, read on the event loop.
 */
import koffi from "koffi"
import type { node } from "koffi"
import { Clock, Duration, Effect } from "effect"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Mac from "../domain/Mac.js"
import type { ArpEndpoint, ArpService, Claim } from "../services/Arp.js"
import { namespaceFd } from "./handle.js"
import { attempt } from "./attempt.js"
import * as libc from "./libc.js"
import { inNamespace, withNamespaceFd } from "./netnsWindow.js"

const ETH_P_ARP = 0x0806
const ARPHRD_ETHER = 1
const ARP_REQUEST = 1
const ARP_REPLY = 2
const ARP_LENGTH = 28
const SOCKADDR_LL_LENGTH = 20
const PACKET_OUTGOING = 4
const EAGAIN = 11
const ENODEV = 19
/** How often awaitAnswer asks again: a lost frame costs at most this much. */
const RESEND_INTERVAL_MILLIS = 200
/** The first resend comes sooner: the one request most often lost is the first, sent as the link comes up. */
const FIRST_RESEND_MILLIS = 10
/** Frames read in one go before yielding to the loop, so a flooding neighbour cannot starve it. */
const DRAIN_BATCH = 256

export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
const ZERO_MAC = new Uint8Array(6)
const UNSPECIFIED = 0 as Ipv4.Ipv4

interface ArpSocket {
  readonly fd: number
  readonly ifindex: number
  readonly mac: Uint8Array
  readonly macText: Mac.Mac
  /** Where every frame goes: the device's broadcast address. */
  readonly destination: Uint8Array
}

interface ArpFrame {
  readonly oper: number
  readonly sha: Mac.Mac
  readonly spa: Ipv4.Ipv4
  readonly tpa: Ipv4.Ipv4
}

/** struct sockaddr_ll: family (host order), protocol (network order), ifindex, hatype, pkttype, halen, addr[8]. */
export const sockaddrLl = (ifindex: number, address: Uint8Array = ZERO_MAC): Uint8Array => {
  const bytes = new Uint8Array(SOCKADDR_LL_LENGTH)
  const view = new DataView(bytes.buffer)
  view.setUint16(0, libc.AF_PACKET, true)
  view.setUint16(2, ETH_P_ARP, false)
  view.setInt32(4, ifindex, true)
  view.setUint16(8, ARPHRD_ETHER, true)
  bytes[11] = 6
  bytes.set(address, 12)
  return bytes
}

/** The 28-byte Ethernet/IPv4 ARP payload (SOCK_DGRAM: the kernel adds the Ethernet header). */
const encodeArp = (oper: number, sha: Uint8Array, spa: Ipv4.Ipv4, tpa: Ipv4.Ipv4): Uint8Array => {
  const bytes = new Uint8Array(ARP_LENGTH)
  const view = new DataView(bytes.buffer)
  view.setUint16(0, ARPHRD_ETHER, false)
  view.setUint16(2, 0x0800, false)
  bytes[4] = 6
  bytes[5] = 4
  view.setUint16(6, oper, false)
  bytes.set(sha, 8)
  bytes.set(Ipv4.toBytes(spa), 14)
  // tha (18..23) stays zero, as RFC 5227 asks of probes and announcements.
  bytes.set(Ipv4.toBytes(tpa), 24)
  return bytes
}

const decodeArp = (bytes: Uint8Array, length: number): ArpFrame | undefined => {
  if (length < ARP_LENGTH) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, length)
  const ethernetIpv4 = view.getUint16(0, false) === ARPHRD_ETHER && view.getUint16(2, false) === 0x0800 &&
    bytes[4] === 6 && bytes[5] === 4
  if (!ethernetIpv4) return undefined
  return {
    oper: view.getUint16(6, false),
    sha: Mac.fromBytes(bytes, 8),
    spa: Ipv4.fromBytes(bytes, 14),
    tpa: Ipv4.fromBytes(bytes, 24)
  }
}

/**
 * Opens the socket inside the endpoint's namespace; the device index is resolved
 * in the same window, since if_nametoindex answers for the calling thread's namespace.
 */
const openSocket = (endpoint: ArpEndpoint, hostNamespace: string | undefined): ArpSocket => {
  const open = (): ArpSocket => {
    const ifindex = libc.ifNametoindex(endpoint.device)
    if (ifindex === 0) throw new libc.SyscallError(`if_nametoindex ${endpoint.device}`, ENODEV)
    // Protocol 0 here and ETH_P_ARP in bind: the socket receives nothing until it
    // is bound to the device, so no frame from another interface is ever queued.
    const fd = libc.socket(libc.AF_PACKET, libc.SOCK_DGRAM | libc.SOCK_NONBLOCK, 0)
    try {
      libc.bind(fd, sockaddrLl(ifindex))
      const mac = libc.getsockname(fd, SOCKADDR_LL_LENGTH).slice(12, 18)
      return { fd, ifindex, mac, macText: Mac.fromBytes(mac), destination: sockaddrLl(ifindex, BROADCAST) }
    } catch (error) {
      libc.close(fd)
      throw error
    }
  }
  return endpoint.namespace === undefined
    ? inNamespace(hostNamespace, open)
    : withNamespaceFd(namespaceFd(endpoint.namespace), open)
}

/**
 * Resolves once the socket has something to read (or room to write); the poll
 * handle never outlives the wait. Interruptible even when the caller is not
 * (say, inside an acquireRelease acquisition), or a window's timeout could not end it.
 */
const ready = (fd: number, events: { readonly readable?: boolean; readonly writable?: boolean }) =>
  Effect.interruptible(Effect.async<void>((resume) => {
    const handle: node.PollHandle = koffi.node.poll(fd, events, () => {
      handle.close()
      resume(Effect.void)
    })
    return Effect.sync(() => handle.close())
  }))

/** Sends every frame; a full send buffer waits for room on the loop instead of failing. */
const sendAll = (socket: ArpSocket, frames: ReadonlyArray<Uint8Array>, context: string) =>
  Effect.gen(function*() {
    let next = 0
    while (next < frames.length) {
      next += yield* attempt(context, () => {
        let sent = 0
        try {
          for (; next + sent < frames.length; sent++) libc.sendto(socket.fd, frames[next + sent]!, socket.destination)
        } catch (error) {
          if (!(error instanceof libc.SyscallError && error.errno === EAGAIN)) throw error
        }
        return sent
      })
      if (next < frames.length) yield* ready(socket.fd, { writable: true })
    }
  })

/**
 * Reads what is queued without waiting: frames from other hosts on our device,
 * never our own (the kernel loops outgoing frames back as PACKET_OUTGOING).
 * Returns true as soon as `onFrame` says it has seen enough.
 */
const drain = (socket: ArpSocket, onFrame: (frame: ArpFrame) => boolean): boolean => {
  const buffer = new Uint8Array(64)
  for (let n = 0; n < DRAIN_BATCH; n++) {
    const received = libc.recvfrom(socket.fd, buffer, SOCKADDR_LL_LENGTH)
    if (received === null) return false
    const from = new DataView(received.address.buffer)
    if (received.address[10] === PACKET_OUTGOING || from.getInt32(4, true) !== socket.ifindex) continue
    const frame = decodeArp(buffer, received.length)
    if (frame === undefined || frame.sha === socket.macText) continue
    if (onFrame(frame)) return true
  }
  return false
}

/** Reads frames until `onFrame` is satisfied (true) or the deadline on the Clock passes (false). */
const readUntil = (socket: ArpSocket, deadline: number, onFrame: (frame: ArpFrame) => boolean, context: string) =>
  Effect.gen(function*() {
    while (true) {
      if (yield* attempt(context, () => drain(socket, onFrame))) return true
      const remaining = deadline - (yield* Clock.currentTimeMillis)
      if (remaining <= 0) return false
      yield* Effect.timeoutOption(ready(socket.fd, { readable: true }), Duration.millis(remaining))
    }
  })

export const makeArp = (options: { readonly hostNamespace?: string }): ArpService => {
  const socketOn = (endpoint: ArpEndpoint) =>
    Effect.acquireRelease(
      attempt(`ARP socket on ${endpoint.device}`, () => openSocket(endpoint, options.hostNamespace)),
      (socket) => Effect.sync(() => libc.closeInBackground(socket.fd))
    )

  return {
    probe: ({ endpoint, probes, targets, window }) =>
      Effect.scoped(Effect.gen(function*() {
        const claims = new Map<Ipv4.Ipv4, Claim>()
        if (targets.length === 0 || probes <= 0) return claims
        const context = `ARP probe on ${endpoint.device}`
        const socket = yield* socketOn(endpoint)
        const wanted = new Set(targets)
        const claim = (target: Ipv4.Ipv4, found: Claim) => {
          // A reply outranks a probe: it shows the address is in use, not just wanted.
          const known = claims.get(target)
          if (known === undefined || (known.by === "probe" && found.by === "reply")) claims.set(target, found)
        }
        const onFrame = (frame: ArpFrame): boolean => {
          if (frame.oper === ARP_REPLY && wanted.has(frame.spa)) {
            claim(frame.spa, { mac: frame.sha, by: "reply" })
          } else if (frame.oper === ARP_REQUEST) {
            // RFC 5227 §2.1.1: a request from the target (an announce, or a host
            // using it) is a conflict, and so is another host's probe for it.
            if (frame.spa === UNSPECIFIED && wanted.has(frame.tpa)) claim(frame.tpa, { mac: frame.sha, by: "probe" })
            else if (wanted.has(frame.spa)) claim(frame.spa, { mac: frame.sha, by: "reply" })
          }
          // once every target is claimed no later frame can free one: the window may end early
          return claims.size === wanted.size
        }
        const windowMillis = Duration.toMillis(window)
        for (let round = 1; round <= probes; round++) {
          const start = yield* Clock.currentTimeMillis
          const open = targets.filter((target) => !claims.has(target))
          yield* sendAll(socket, open.map((t) => encodeArp(ARP_REQUEST, socket.mac, UNSPECIFIED, t)), context)
          if (yield* readUntil(socket, start + windowMillis, onFrame, context)) break
        }
        return claims
      })),

    awaitAnswer: (endpoint, target, timeout) =>
      Effect.scoped(Effect.gen(function*() {
        const context = `ARP request on ${endpoint.device}`
        const socket = yield* socketOn(endpoint)
        const request = encodeArp(ARP_REQUEST, socket.mac, UNSPECIFIED, target)
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timeout)
        const answered = (frame: ArpFrame) => frame.oper === ARP_REPLY && frame.spa === target
        let interval = FIRST_RESEND_MILLIS
        while (true) {
          yield* sendAll(socket, [request], context)
          const now = yield* Clock.currentTimeMillis
          if (yield* readUntil(socket, Math.min(deadline, now + interval), answered, context)) return true
          interval = Math.min(interval * 2, RESEND_INTERVAL_MILLIS)
          if ((yield* Clock.currentTimeMillis) >= deadline) return false
        }
      })),

    announce: (endpoint, address) =>
      Effect.scoped(Effect.gen(function*() {
        const socket = yield* socketOn(endpoint)
        yield* sendAll(
          socket,
          [encodeArp(ARP_REQUEST, socket.mac, address, address)],
          `ARP announce on ${endpoint.device}`
        )
      }))
  }
}
