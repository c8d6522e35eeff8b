/** The README's examples, kept compiling and passing: imported from "netjail" as a user would. */
import { expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, TestClock } from "effect"
import { makeConfig, Sandbox } from "netjail"
import { Arbitraries, layerSim } from "netjail/testing"

// "my iprange policy never hands out an address a host holds"
it.effect.prop("never an occupied address", [Arbitraries.segment()], ([segment]) =>
  Effect.gen(function*() {
    const config = makeConfig({ interfaces: [{ device: "br0" }] })
    const fiber = yield* Effect.fork(Sandbox.plan(config).pipe(Effect.provide(layerSim(Arbitraries.worldOf(segment)))))
    yield* TestClock.adjust("1 minute") // every probe window passes instantly
    const exit = yield* Fiber.await(fiber)
    if (Exit.isSuccess(exit)) {
      const chosen = Option.getOrThrow(exit.value.addresses[0]!).address
      expect(segment.hosts.some((h) => h.address === chosen)).toBe(false)
    }
  }), { fastCheck: { numRuns: 30 } })
