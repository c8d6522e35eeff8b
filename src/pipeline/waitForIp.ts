/**
 * Phase 5: the sandbox address must answer ARP from the host side before the
 * command runs, so the command never starts on a half-configured network.
 */
import { type Duration, Effect } from "effect"
import * as Errors from "../domain/errors.js"
import type { Ipv4 } from "../domain/Ipv4.js"
import { Arp } from "../services/Arp.js"
import type { Bridge } from "./configureBridge.js"

export const waitForIp = Effect.fn("waitForIp")(function*(bridge: Bridge, address: Ipv4, timeout: Duration.Duration) {
  const answered = yield* (yield* Arp).awaitAnswer({ device: bridge.device.name }, address, timeout)
  if (!answered) return yield* new Errors.AddressNotAnswering({ address, device: bridge.device.name, timeout })
})
