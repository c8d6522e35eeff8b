/**
 * The HostLock service on the real kernel: flock(2) on one file, taken by
 * non-blocking attempts with back-off so the wait stays interruptible and timed by the Clock.
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { Duration, Effect, Option } from "effect"
import { KernelError, LockTimeout } from "../domain/errors.js"
import type { HostLockService } from "../services/HostLock.js"
import * as libc from "./libc.js"

export const DEFAULT_LOCK_PATH = "/run/netjail/netjail.lock"

const FIRST_BACKOFF = Duration.micros(500n)
const MAX_BACKOFF = Duration.millis(100)

const kernelError = (operation: string, error: unknown): KernelError => {
  if (error instanceof libc.SyscallError) {
    return new KernelError({ operation, errno: error.errno, code: libc.errnoName(error.errno) })
  }
  const { errno, code } = error as NodeJS.ErrnoException
  // Node reports errno negated (uv style); the kernel's number is its absolute value.
  if (typeof errno === "number") return new KernelError({ operation, errno: Math.abs(errno), code: code ?? "" })
  throw error
}

/**
 * O_CLOEXEC (libc.open adds it) so the sandboxed command never inherits the
 * lock and keeps it after netjail dies; O_NOFOLLOW so a planted symlink cannot
 * make root create or truncate another file.
 */
const openLockFile = (path: string): number => {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
  return libc.open(path, libc.O_WRONLY | libc.O_CREAT | libc.O_NOFOLLOW, 0o600)
}

export const makeHostLock = (options: { readonly path?: string }): HostLockService => {
  const path = options.path ?? DEFAULT_LOCK_PATH

  const attempt = (fd: number) =>
    Effect.try({
      try: () => libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB),
      catch: (error) => kernelError(`flock ${path}`, error)
    })

  /** Tries until it holds the lock; each sleep is an interruption point. */
  const waitFor = (fd: number) =>
    Effect.gen(function*() {
      let backoff = FIRST_BACKOFF
      while (!(yield* attempt(fd))) {
        yield* Effect.sleep(backoff)
        backoff = Duration.min(Duration.times(backoff, 2), MAX_BACKOFF)
      }
    })

  return {
    acquire: (timeout) =>
      Effect.gen(function*() {
        // The fd is the resource: closing it drops the lock too, so one
        // release covers every exit, including an interrupted wait.
        const fd = yield* Effect.acquireRelease(
          Effect.try({ try: () => openLockFile(path), catch: (error) => kernelError(`open ${path}`, error) }),
          (fd) =>
            Effect.sync(() => {
              try {
                libc.flock(fd, libc.LOCK_UN)
              } catch {
                // close below drops the lock anyway
              }
              libc.close(fd)
            })
        )
        yield* Option.match(timeout, {
          onNone: () => waitFor(fd),
          // Interruptible even inside an uninterruptible caller, or the timeout could not stop the wait;
          // the fd belongs to the scope either way, so nothing leaks.
          onSome: (duration) =>
            Effect.interruptible(waitFor(fd)).pipe(
              Effect.timeoutFail({ duration, onTimeout: () => new LockTimeout({ path, timeout: duration }) })
            )
        })
      })
  }
}
