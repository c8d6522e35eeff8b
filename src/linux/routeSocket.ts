/**
 * A NETLINK_ROUTE socket that speaks request and reply: each request gets a
 * sequence number, and the replies carrying it are collected until the ack.
 */
import { constants as osConstants } from "node:os"
import * as libc from "./libc.js"
import { withNamespaceFd, withNamespacePath } from "./netnsWindow.js"
import * as Rtnl from "./rtnetlink.js"

/** Where to open the socket: a namespace held by an fd, or named by a path such as /run/netns/NAME. */
export type NamespaceRef = { readonly fd: number } | { readonly path: string }

export interface RouteSocket {
  /**
   * Sends one request and returns the replies that carry its sequence number,
   * without the closing ack or NLMSG_DONE. A refusal throws a SyscallError
   * named after the message, with the kernel's extended-ack text as detail.
   */
  readonly request: (request: Rtnl.Request) => ReadonlyArray<Rtnl.Message>
  readonly close: () => void
}

/** The kernel answers within sendmsg, so this only fires on a bug; it keeps the main thread from parking forever. */
const RECEIVE_TIMEOUT_MS = 5_000
/** The kernel caps a dump datagram at 32 KiB; twice that leaves room. */
const RECEIVE_BUFFER = 64 * 1024
const MSG_TRUNC = 0x20
const { EAGAIN, ENOBUFS } = osConstants.errno

/** sockaddr_nl: family, pad, port id, groups; port 0 is the kernel, and 0 on bind lets it pick ours. */
const sockaddrNl = (): Uint8Array => {
  const address = new Uint8Array(12)
  new DataView(address.buffer).setUint16(0, libc.AF_NETLINK, true)
  return address
}

const configure = (fd: number): void => {
  libc.bind(fd, sockaddrNl())
  // Errors then carry the kernel's explanation and echo only the request's header.
  libc.setsockoptInt(fd, libc.SOL_NETLINK, libc.NETLINK_EXT_ACK, 1)
  libc.setsockoptInt(fd, libc.SOL_NETLINK, libc.NETLINK_CAP_ACK, 1)
  // Dump requests are then checked and filtered by the kernel (an address dump by ifa_index).
  libc.setsockoptInt(fd, libc.SOL_NETLINK, libc.NETLINK_GET_STRICT_CHK, 1)
  libc.setReceiveTimeout(fd, RECEIVE_TIMEOUT_MS)
}

/** A netlink socket belongs to the namespace it was created in for life, so only socket() needs the window. */
const createSocket = (where: NamespaceRef | undefined): number => {
  const create = () => libc.socket(libc.AF_NETLINK, libc.SOCK_RAW, libc.NETLINK_ROUTE)
  if (where === undefined) return create()
  return "fd" in where ? withNamespaceFd(where.fd, create) : withNamespacePath(where.path, create)
}

export const openRouteSocket = (where?: NamespaceRef): RouteSocket => {
  const fd = createSocket(where)
  try {
    configure(fd)
  } catch (error) {
    libc.close(fd)
    throw error
  }
  const kernel = sockaddrNl()
  const buffer = new Uint8Array(RECEIVE_BUFFER)
  let seq = 0
  let open = true

  const receive = (call: string): Array<Rtnl.Message> => {
    const received = libc.recvfrom(fd, buffer, 12, MSG_TRUNC)
    if (received === null) throw new libc.SyscallError(call, EAGAIN, `no reply within ${RECEIVE_TIMEOUT_MS} ms`)
    if (received.length > buffer.length) throw new libc.SyscallError(call, ENOBUFS, "reply larger than the buffer")
    // A copy: the messages are views, and the next receive (the ack) reuses the buffer.
    return Rtnl.decodeMessages(buffer.slice(0, received.length))
  }

  const request = (req: Rtnl.Request): ReadonlyArray<Rtnl.Message> => {
    if (!open) throw new Error("netlink socket used after close")
    const call = Rtnl.messageName(req.type)
    seq = (seq + 1) >>> 0
    const mine = seq
    // Always ask for the ack: without it a request that needs no reply would leave us waiting.
    libc.sendto(fd, Rtnl.encode({ ...req, flags: req.flags | Rtnl.NLM_F_ACK }, mine), kernel)
    const replies: Array<Rtnl.Message> = []
    for (;;) {
      for (const message of receive(call)) {
        // Replies to an earlier request that gave up (timeout) may still be queued.
        if (message.seq !== mine) continue
        if (message.type === Rtnl.NLMSG_ERROR || message.type === Rtnl.NLMSG_DONE) {
          const verdict = Rtnl.decodeVerdict(message)
          if (verdict.errno !== 0) throw new libc.SyscallError(call, verdict.errno, verdict.message)
          return replies
        }
        replies.push(message)
      }
    }
  }

  return {
    request,
    close: () => {
      if (open) libc.close(fd)
      open = false
    }
  }
}

/** Opens a socket for one synchronous use and closes it, also when the use throws. */
export const withRouteSocket = <A>(where: NamespaceRef | undefined, use: (socket: RouteSocket) => A): A => {
  const socket = openRouteSocket(where)
  try {
    return use(socket)
  } finally {
    socket.close()
  }
}
