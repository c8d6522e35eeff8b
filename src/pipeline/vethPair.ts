/**
 * Phase 4 for a bridge: the veth pair, created in one kernel call with the
 * host end in the bridge and the sandbox end born inside the namespace; then
 * the sandbox end gets its address, comes up and announces itself.
 */
import { Effect, Option } from "effect"
import type { Cidr } from "../domain/Subnet.js"
import { Arp } from "../services/Arp.js"
import { Links } from "../services/Links.js"
import type { SandboxNamespace } from "../services/Namespaces.js"
import { type Bridge, sandboxName } from "./configureBridge.js"
import { bestEffort } from "./release.js"

/** Address, up, gratuitous ARP: the same inside-the-namespace steps for every kind of interface. */
export const bringUpInside = (namespace: SandboxNamespace, name: string, address: Option.Option<Cidr>) =>
  Effect.gen(function*() {
    const mac = yield* (yield* Links).setUp(namespace, { name, address })
    if (Option.isSome(address)) {
      yield* (yield* Arp).announce({ device: name, namespace }, address.value.address)
    }
    return mac
  })

export const vethPair = Effect.fn("vethPair")(function*(
  bridge: Bridge,
  namespace: SandboxNamespace,
  hostName: string,
  address: Option.Option<Cidr>
) {
  const links = yield* Links
  const name = sandboxName(bridge.slot)
  yield* Effect.acquireRelease(
    links.createVethPair({
      hostName,
      bridge: bridge.device,
      namespace,
      sandboxName: name,
      mtu: bridge.mtu,
      ...(bridge.request.mac === undefined ? {} : { mac: bridge.request.mac })
    }),
    // the kernel would also reclaim it with the namespace, but ~35 ms later and
    // asynchronously; deleting it here means nothing is left when netjail exits
    () => bestEffort(`delete ${hostName}`, links.deleteHostLink(hostName))
  )
  return yield* bringUpInside(namespace, name, address)
})
