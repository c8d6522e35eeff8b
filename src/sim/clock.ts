/**
 * Running a simulated scenario under TestClock: time jumps from one pending
 * sleep to the next, so probe windows and timeouts cost no real time and a
 * run costs as many steps as it has waits.
 */
import { Chunk, Effect, Exit, Fiber, Option, TestClock } from "effect"

/** Runs the effect to its end under TestClock and returns its Exit. */
export const settle = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (;;) {
      // let every runnable fiber reach its next sleep before time moves
      yield* Effect.yieldNow()
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      const sleeps = yield* TestClock.sleeps()
      const now = yield* TestClock.currentTimeMillis
      const next = Chunk.reduce(sleeps, Infinity, (a, b) => Math.min(a, b))
      yield* TestClock.adjust(Number.isFinite(next) ? Math.max(next - now, 0) : 0)
    }
  })
