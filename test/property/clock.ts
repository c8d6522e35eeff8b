/** Helpers for tests on the simulated network: settle (from netjail/testing), failure tags. */
import { Cause, Exit, Option, TestClock } from "effect"

export { settle } from "../../src/sim/clock.js"

/** Virtual milliseconds since the test started. */
export const now = TestClock.currentTimeMillis

/** The tag of an expected failure, if the exit is one. */
export const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e) => e._tag)) : undefined

export const failure = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
