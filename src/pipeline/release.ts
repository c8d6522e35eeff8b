/** Releases never fail and never hang: a bounded attempt, and a warning when it did not work. */
import { Duration, Effect } from "effect"

export const RELEASE_TIMEOUT = Duration.seconds(2)

export const bestEffort = <E>(what: string, effect: Effect.Effect<void, E>): Effect.Effect<void> =>
  effect.pipe(
    Effect.timeoutFail({ duration: RELEASE_TIMEOUT, onTimeout: () => `timed out after ${Duration.format(RELEASE_TIMEOUT)}` }),
    Effect.catchAllCause((cause) => Effect.logWarning(`could not ${what}`, cause))
  )
