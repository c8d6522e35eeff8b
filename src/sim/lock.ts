/**
 * The simulated HostLock: a semaphore per world, its state mirrored in the
 * world's `lockHeld` so tests can see who holds it. Waiters queue rather than
 * poll, so many concurrent runs cost nothing under TestClock.
 */
import { Effect, Option, Ref } from "effect"
import { LockTimeout } from "../domain/errors.js"
import type { HostLockService } from "../services/HostLock.js"
import type { World } from "./world.js"

export const SIM_LOCK_PATH = "/run/netjail/netjail.lock (simulated)"

const semaphores = new WeakMap<Ref.Ref<World>, Effect.Semaphore>()
const semaphoreOf = (world: Ref.Ref<World>) => {
  let semaphore = semaphores.get(world)
  if (!semaphore) semaphores.set(world, (semaphore = Effect.unsafeMakeSemaphore(1)))
  return semaphore
}

export const makeHostLock = (world: Ref.Ref<World>): HostLockService => {
  const semaphore = semaphoreOf(world)
  const release = Effect.zipRight(Ref.update(world, (w) => ({ ...w, lockHeld: false })), semaphore.release(1))
  return {
    acquire: (timeout) =>
      Effect.uninterruptibleMask((restore) => {
        const take = Option.match(timeout, {
          onNone: () => semaphore.take(1),
          onSome: (duration) =>
            semaphore.take(1).pipe(
              Effect.timeoutFail({ duration, onTimeout: () => new LockTimeout({ path: SIM_LOCK_PATH, timeout: duration }) })
            )
        })
        // waiting is interruptible; taking and registering the release is one step
        return restore(take).pipe(
          Effect.zipRight(Ref.update(world, (w) => ({ ...w, lockHeld: true }))),
          Effect.zipRight(Effect.addFinalizer(() => release))
        )
      })
  }
}
