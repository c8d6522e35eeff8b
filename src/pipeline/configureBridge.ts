/**
 * Phase 1, per `--net`: read the host device and work out what the sandbox
 * joins: how it is wired (veth, macvlan, ipvlan), the subnet, the MTU, and
 * whether an IPv4 address can be configured at all (firejail §2.1).
 */
import { Effect, Option } from "effect"
import type { InterfaceRequest } from "../domain/Config.js"
import * as Errors from "../domain/errors.js"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Subnet from "../domain/Subnet.js"
import { type Device, Links } from "../services/Links.js"

export type Wiring = "veth" | "macvlan" | "ipvlan"

export interface Bridge {
  /** 0..3: the sandbox interface is eth<slot>. */
  readonly slot: number
  readonly request: InterfaceRequest
  readonly device: Device
  readonly wiring: Wiring
  /** The subnet the sandbox address comes from; None when no address can be configured. */
  readonly subnet: Option.Option<Subnet.Cidr>
  /** The device's own addresses, which the sandbox must not take (it cannot hear them on ARP through a macvlan). */
  readonly hostAddresses: ReadonlySet<Ipv4.Ipv4>
  /** The first of them, the bridge's address firejail uses as the default gateway. */
  readonly hostAddress: Option.Option<Ipv4.Ipv4>
  readonly mtu: number
  readonly warnings: ReadonlyArray<string>
}

export const sandboxName = (slot: number) => `eth${slot}`

const wiringOf = (device: Device, request: InterfaceRequest): Wiring =>
  device.kind === "bridge" ? "veth" : device.kind === "wireless" || request.ipvlan ? "ipvlan" : "macvlan"

/** The subnet for a device without IPv4, from --netmask plus --ip or --defaultgw, as firejail infers it. */
const inferredSubnet = (request: InterfaceRequest, defaultGateway: Option.Option<Ipv4.Ipv4>) =>
  Effect.gen(function*() {
    if (request.netmask === undefined) return Option.none<Subnet.Cidr>()
    const prefix = Subnet.prefixOfMask(request.netmask)
    if (Option.isNone(prefix)) return yield* new Errors.InvalidNetmask({ value: Ipv4.format(request.netmask) })
    const anchor = request.address._tag === "Static" ? Option.some(request.address.address) : defaultGateway
    return Option.map(anchor, (address) => Subnet.make(Subnet.network(Subnet.make(address, prefix.value)), prefix.value))
  })

export const configureBridge = Effect.fn("configureBridge")(function*(
  request: InterfaceRequest,
  slot: number,
  defaultGateway: Option.Option<Ipv4.Ipv4>
) {
  const links = yield* Links
  const device = yield* links.readDevice(request.device)
  const warnings: Array<string> = []
  const own = Option.fromNullable(device.addresses[0])
  if (Option.isSome(own) && own.value.prefix > 30) {
    return yield* new Errors.SubnetTooSmall({ device: device.name, prefix: own.value.prefix })
  }
  const wiring = wiringOf(device, request)
  // a macvlan or ipvlan child cannot be larger than its parent; the kernel would only say EINVAL
  if (wiring !== "veth" && request.mtu !== undefined && request.mtu > device.mtu) {
    return yield* new Errors.MtuAboveParent({ mtu: request.mtu, device: device.name, parentMtu: device.mtu })
  }
  const subnet = Option.isSome(own) ? own : yield* inferredSubnet(request, defaultGateway)
  if (Option.isSome(subnet) && subnet.value.prefix > 30) {
    return yield* new Errors.SubnetTooSmall({ device: device.name, prefix: subnet.value.prefix })
  }
  if (Option.isNone(subnet) && request.address._tag !== "None") {
    warnings.push(`Not enough information to configure an IP address for interface --net=${device.name}`)
  }
  if (request.iprange !== undefined && Option.isSome(subnet)) {
    const { end, start } = request.iprange
    if (!Subnet.isHost(subnet.value, start) || !Subnet.isHost(subnet.value, end)) {
      return yield* new Errors.IpRangeOutsideSubnet({ device: device.name })
    }
  }
  return {
    slot,
    request,
    device,
    wiring,
    subnet: request.address._tag === "None" ? Option.none() : subnet,
    hostAddresses: new Set(device.addresses.map((c) => c.address)),
    hostAddress: Option.map(own, (c) => c.address),
    mtu: request.mtu ?? device.mtu,
    warnings
  } satisfies Bridge
})
