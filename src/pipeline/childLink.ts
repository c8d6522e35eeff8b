/**
 * Phase 4 for an ethernet or wireless device: a macvlan (bridge mode) or
 * ipvlan (L2) child created inside the namespace. The host cannot probe
 * through its own macvlan children, so the address is chosen from inside,
 * over the new interface, with the same rules as for a bridge.
 */
import { Effect, Option } from "effect"
import type { Ipv4 } from "../domain/Ipv4.js"
import { Links } from "../services/Links.js"
import type { SandboxNamespace } from "../services/Namespaces.js"
import { type Allocation, chooseSandboxIp } from "./chooseSandboxIp.js"
import { type Bridge, sandboxName } from "./configureBridge.js"
import { bringUpInside } from "./vethPair.js"

export const childLink = Effect.fn("childLink")(function*(
  bridge: Bridge,
  namespace: SandboxNamespace,
  gateway: Option.Option<Ipv4>,
  allocation: Allocation
) {
  const links = yield* Links
  const name = sandboxName(bridge.slot)
  // Lives inside the namespace, so it goes with it: nothing host-side to release.
  yield* links.createChildLink({
    kind: bridge.wiring === "ipvlan" ? "ipvlan" : "macvlan",
    parent: bridge.device,
    namespace,
    sandboxName: name,
    mtu: bridge.mtu,
    ...(bridge.request.mac === undefined || bridge.wiring === "ipvlan" ? {} : { mac: bridge.request.mac })
  })
  // up without an address first: probes need a running interface
  const mac = yield* links.setUp(namespace, { name, address: Option.none() })
  const address = yield* chooseSandboxIp(bridge, gateway, allocation, { device: name, namespace })
  if (Option.isSome(address)) yield* bringUpInside(namespace, name, address)
  return { address, mac }
})
