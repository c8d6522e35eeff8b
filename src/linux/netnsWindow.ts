/**
 * The synchronous setns window: switch the main thread into a network
 * namespace, run a synchronous action (open a socket, fork a child), switch
 * back in `finally`. Nothing asynchronous may run inside: only the calling
 * thread moves, and Node's own sockets are created later, in whatever
 * namespace the thread is in then.
 */
import * as libc from "./libc.js"

/** The namespace the main thread started in; opened once, kept for every switch back. */
let origin: number | undefined
const originFd = (): number => (origin ??= libc.open("/proc/thread-self/ns/net", libc.O_RDONLY))

export const withNamespaceFd = <A>(fd: number, action: () => A): A => {
  const back = originFd()
  libc.setns(fd, libc.CLONE_NEWNET)
  try {
    return action()
  } finally {
    try {
      libc.setns(back, libc.CLONE_NEWNET)
    } catch {
      // Continuing in the wrong namespace would put every later socket there.
      process.abort()
    }
  }
}

export const withNamespacePath = <A>(path: string, action: () => A): A => {
  const fd = libc.open(path, libc.O_RDONLY)
  try {
    return withNamespaceFd(fd, action)
  } finally {
    libc.close(fd)
  }
}

/** Runs in the given namespace, or right here when none is given (the layer's host namespace). */
export const inNamespace = <A>(path: string | undefined, action: () => A): A =>
  path === undefined ? action() : withNamespacePath(path, action)

/** A new network namespace, held by the returned fd; the main thread is back home on return. */
export const unshareNamespace = (): number => {
  const back = originFd()
  libc.unshare(libc.CLONE_NEWNET)
  try {
    return libc.open("/proc/thread-self/ns/net", libc.O_RDONLY)
  } finally {
    try {
      libc.setns(back, libc.CLONE_NEWNET)
    } catch {
      process.abort()
    }
  }
}
