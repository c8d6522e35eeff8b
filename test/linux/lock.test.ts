/**
 * The Linux HostLock against real flock(2): contention, timeouts on the Clock,
 * interruption, a SIGKILLed holder, and no lock inherited by a child.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Scope, TestClock } from "effect"
import * as libc from "../../src/linux/libc.js"
import { makeHostLock } from "../../src/linux/lock.js"
import { firstLine, isRunning, killIfRunning, startFixture } from "./fixtures/processes.js"

/** A lock path in a fresh temp dir (its directory not created yet), removed with the scope. */
const lockPath = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "njt-lock-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => join(dir, "run", "netjail.lock")))

/** fds of `pid` open on `path`. */
const fdsOn = (path: string, pid: number | "self" = "self") =>
  readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === path
    } catch {
      return false
    }
  }).length

/** Whether someone else holds the lock, asked through an independent open file description. */
const heldElsewhere = (path: string) => {
  const fd = libc.open(path, libc.O_RDONLY)
  try {
    const got = libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB)
    if (got) libc.flock(fd, libc.LOCK_UN)
    return !got
  } finally {
    libc.close(fd)
  }
}

describe("linux HostLock", () => {
  it.scopedLive("creates the directory 0755 and the file 0600, and holds the lock for the scope", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      const scope = yield* Scope.make()
      yield* Scope.extend(lock.acquire(Option.none()), scope)
      expect(statSync(join(path, "..")).mode & 0o777).toBe(0o755)
      expect(statSync(path).mode & 0o777).toBe(0o600)
      expect(heldElsewhere(path)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(heldElsewhere(path)).toBe(false)
      expect(fdsOn(path)).toBe(0)
    }))

  it.scopedLive("a second acquire fails with LockTimeout while the lock is held", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      yield* lock.acquire(Option.none())
      const error = yield* Effect.flip(Effect.scoped(lock.acquire(Option.some(Duration.millis(200)))))
      expect(error._tag).toBe("LockTimeout")
      expect(error).toMatchObject({ path, timeout: Duration.millis(200) })
      // The timed-out attempt closed its fd.
      expect(fdsOn(path)).toBe(1)
    }))

  it.scopedLive("the timeout holds even when the caller is uninterruptible", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      yield* lock.acquire(Option.none())
      const error = yield* Effect.flip(
        Effect.scoped(Effect.uninterruptible(lock.acquire(Option.some(Duration.millis(100)))))
      )
      expect(error._tag).toBe("LockTimeout")
    }))

  it.scoped("the wait is timed by the Clock (TestClock drives it)", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      yield* lock.acquire(Option.none())
      const waiter = yield* Effect.fork(Effect.scoped(lock.acquire(Option.some(Duration.seconds(3)))))
      yield* TestClock.adjust(Duration.seconds(3))
      const exit = yield* Fiber.await(waiter)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("LockTimeout")
    }))

  it.scopedLive("a waiting acquire can be interrupted and leaves no fd behind", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      yield* lock.acquire(Option.none())
      const waiter = yield* Effect.fork(Effect.scoped(lock.acquire(Option.none())))
      yield* Effect.sleep(Duration.millis(100))
      expect(fdsOn(path)).toBe(2)
      yield* Fiber.interrupt(waiter)
      expect(fdsOn(path)).toBe(1)
    }))

  it.scopedLive("a holder killed with SIGKILL releases the lock", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      const holder = yield* startFixture("holdLock.ts", path)
      expect(yield* firstLine(holder)).toBe("locked")
      const error = yield* Effect.flip(Effect.scoped(lock.acquire(Option.some(Duration.millis(200)))))
      expect(error._tag).toBe("LockTimeout")
      holder.kill("SIGKILL")
      yield* Effect.scoped(lock.acquire(Option.some(Duration.seconds(5))))
    }))

  it.scopedLive("the lock fd is close-on-exec: a child started while holding it does not keep it", () =>
    Effect.gen(function*() {
      const path = yield* lockPath
      const lock = makeHostLock({ path })
      const held = yield* Scope.make()
      yield* Scope.extend(lock.acquire(Option.none()), held)
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => spawn("sleep", ["1000"], { stdio: "ignore" })),
        (child) => Effect.sync(() => child.pid !== undefined && killIfRunning(child.pid, "sleep"))
      )
      const pid = child.pid!
      expect(fdsOn(path, pid)).toBe(0)
      yield* Scope.close(held, Exit.void)
      yield* Effect.scoped(lock.acquire(Option.some(Duration.seconds(1))))
      expect(isRunning(pid)).toBe(true)
    }))
})
