/**
 * The libc calls the Linux layer makes, declared once through koffi. Each
 * wrapper reads errno right after its call and throws a SyscallError, so no
 * other call can overwrite errno in between; callers turn it into KernelError.
 */
import koffi from "koffi"
import { errnoName } from "../domain/errno.js"

const libc = koffi.load("libc.so.6")

const fn = {
  socket: libc.func("int socket(int domain, int type, int protocol)"),
  bind: libc.func("int bind(int fd, const void *addr, uint32_t len)"),
  getsockname: libc.func("int getsockname(int fd, void *addr, _Inout_ uint32_t *len)"),
  setsockopt: libc.func("int setsockopt(int fd, int level, int name, const void *value, uint32_t len)"),
  sendto: libc.func("long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)"),
  recvfrom: libc.func("long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, _Inout_ uint32_t *alen)"),
  close: libc.func("int close(int fd)"),
  open: libc.func("int open(const char *path, int flags, uint32_t mode)"),
  setns: libc.func("int setns(int fd, int nstype)"),
  unshare: libc.func("int unshare(int flags)"),
  flock: libc.func("int flock(int fd, int op)"),
  ifNametoindex: libc.func("unsigned int if_nametoindex(const char *name)")
}

export const AF_INET = 2
export const AF_NETLINK = 16
export const AF_PACKET = 17
export const SOCK_DGRAM = 2
export const SOCK_RAW = 3
export const SOCK_NONBLOCK = 0x800
export const SOCK_CLOEXEC = 0x80000
export const NETLINK_ROUTE = 0
export const SOL_SOCKET = 1
export const SO_RCVTIMEO = 20
export const SOL_NETLINK = 270
export const NETLINK_CAP_ACK = 10
export const NETLINK_EXT_ACK = 11
export const NETLINK_GET_STRICT_CHK = 12
export const CLONE_NEWNET = 0x40000000
export const O_RDONLY = 0
export const O_WRONLY = 1
export const O_RDWR = 2
export const O_CREAT = 0x40
export const O_NOFOLLOW = 0x20000
export const O_CLOEXEC = 0x80000
export const LOCK_EX = 2
export const LOCK_NB = 4
export const LOCK_UN = 8

export { errnoName }

/** A failed system call: which call, and the errno it left. */
export class SyscallError extends Error {
  constructor(readonly call: string, readonly errno: number, readonly detail?: string) {
    super(`${call}: ${errnoName(errno)}${detail ? ` [${detail}]` : ""}`)
  }
}

const check = <A extends number | bigint>(call: string, result: A): A => {
  if (Number(result) < 0) throw new SyscallError(call, koffi.errno())
  return result
}

export const socket = (domain: number, type: number, protocol: number): number =>
  check("socket", fn.socket(domain, type | SOCK_CLOEXEC, protocol) as number)

export const bind = (fd: number, address: Uint8Array): void => {
  check("bind", fn.bind(fd, address, address.length) as number)
}

export const getsockname = (fd: number, size: number): Uint8Array => {
  const address = new Uint8Array(size)
  const length = [size]
  check("getsockname", fn.getsockname(fd, address, length) as number)
  return address
}

export const setsockopt = (fd: number, level: number, name: number, value: Uint8Array): void => {
  check("setsockopt", fn.setsockopt(fd, level, name, value, value.length) as number)
}

export const setsockoptInt = (fd: number, level: number, name: number, value: number): void => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setInt32(0, value, true)
  setsockopt(fd, level, name, bytes)
}

/** SO_RCVTIMEO, a safety net so a bug can never park the main thread forever. */
export const setReceiveTimeout = (fd: number, millis: number): void => {
  const timeval = new Uint8Array(16)
  const view = new DataView(timeval.buffer)
  view.setBigInt64(0, BigInt(Math.floor(millis / 1000)), true)
  view.setBigInt64(8, BigInt((millis % 1000) * 1000), true)
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeval)
}

export const sendto = (fd: number, data: Uint8Array, address: Uint8Array | null): number =>
  Number(check("sendto", fn.sendto(fd, data, data.length, 0, address, address ? address.length : 0) as number))

/** Receives one datagram; returns null when nothing is queued (non-blocking read). */
export const recvfrom = (
  fd: number,
  buffer: Uint8Array,
  addressSize: number,
  flags = 0
): { readonly length: number; readonly address: Uint8Array } | null => {
  const address = new Uint8Array(addressSize)
  const alen = [addressSize]
  const n = Number(fn.recvfrom(fd, buffer, buffer.length, flags, address, alen))
  if (n < 0) {
    const errno = koffi.errno()
    if (errno === 11) return null
    throw new SyscallError("recvfrom", errno)
  }
  return { length: n, address }
}

export const close = (fd: number): void => {
  fn.close(fd)
}

/**
 * Closes on a libuv pool thread, not awaited. Closing an AF_PACKET socket waits
 * for an RCU grace period (6-18 ms measured): the main thread need not. The fd
 * number stays taken until the close has run, so nothing can reuse it early.
 */
export const closeInBackground = (fd: number): void => {
  fn.close.async(fd, () => {})
}

export const open = (path: string, flags: number, mode = 0): number =>
  check(`open ${path}`, fn.open(path, flags | O_CLOEXEC, mode) as number)

export const setns = (fd: number, nstype: number): void => {
  check("setns", fn.setns(fd, nstype) as number)
}

export const unshare = (flags: number): void => {
  check("unshare", fn.unshare(flags) as number)
}

/** Returns false when the lock is held elsewhere (LOCK_NB and EWOULDBLOCK). */
export const flock = (fd: number, op: number): boolean => {
  if ((fn.flock(fd, op) as number) === 0) return true
  const errno = koffi.errno()
  if (errno === 11) return false
  throw new SyscallError("flock", errno)
}

/** 0 when the device does not exist in the calling thread's namespace. */
export const ifNametoindex = (name: string): number => fn.ifNametoindex(name) as number
