/**
 * The sandbox's default gateway (firejail §2.2): `--defaultgw` if it lies in
 * some interface's subnet; otherwise the first interface decides: a bridge's
 * own address, or for macvlan/ipvlan the host's gateway when it is on that segment.
 */
import { Effect, Option } from "effect"
import * as Errors from "../domain/errors.js"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Subnet from "../domain/Subnet.js"
import { Links } from "../services/Links.js"
import type { SandboxNamespace } from "../services/Namespaces.js"
import type { Bridge } from "./configureBridge.js"

export const chooseGateway = Effect.fn("chooseGateway")(function*(
  bridges: ReadonlyArray<Bridge>,
  requested: Option.Option<Ipv4.Ipv4>
) {
  const subnets = bridges.flatMap((b) => Option.toArray(b.subnet))
  if (Option.isSome(requested)) {
    if (subnets.length > 0 && !subnets.some((s) => Subnet.contains(s, requested.value))) {
      return yield* new Errors.GatewayOutOfRange({ gateway: requested.value })
    }
    return requested
  }
  const first = bridges[0]
  if (first === undefined || Option.isNone(first.subnet)) return Option.none<Ipv4.Ipv4>()
  if (first.wiring === "veth") return first.hostAddress
  const hostGateway = yield* (yield* Links).hostGateway
  return Option.filter(hostGateway, (gw) => Subnet.isHost(first.subnet.pipe(Option.getOrThrow), gw))
})

/**
 * The default route inside the sandbox, once its interfaces have addresses.
 * A gateway that no sandbox address can reach is reported, not fatal, as in firejail.
 */
export const installDefaultRoute = Effect.fn("installDefaultRoute")(function*(
  namespace: SandboxNamespace,
  gateway: Option.Option<Ipv4.Ipv4>,
  addresses: ReadonlyArray<Subnet.Cidr>
) {
  if (Option.isNone(gateway)) return Option.none<string>()
  if (!addresses.some((a) => Subnet.contains(a, gateway.value))) {
    return Option.some(`cannot configure default route: no sandbox address is on ${Ipv4.format(gateway.value)}'s network`)
  }
  yield* (yield* Links).addDefaultRoute(namespace, gateway.value)
  return Option.none<string>()
})
