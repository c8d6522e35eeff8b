/** Drives TestClock until a forked effect finishes, so probe windows and timeouts cost no real time. */
import { Cause, Chunk, Effect, Exit, Fiber, Option, TestClock } from "effect"

/** Jumps from one pending sleep to the next, so a run costs as many steps as it has waits. */
export const settle = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
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

/** Virtual milliseconds since the test started. */
export const now = TestClock.currentTimeMillis

/** The tag of an expected failure, if the exit is one. */
export const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e) => e._tag)) : undefined

export const failure = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
