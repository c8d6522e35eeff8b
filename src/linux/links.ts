/**
 * The Links service on the real kernel: rtnetlink requests through one socket in
 * the host namespace, and short-lived sockets opened inside each sandbox namespace.
 */
import { existsSync } from "node:fs"
import { constants as osConstants } from "node:os"
import { Effect, Option, type Scope } from "effect"
import { DeviceNotFound, IpvlanUnsupported, type KernelError } from "../domain/errors.js"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Mac from "../domain/Mac.js"
import * as Subnet from "../domain/Subnet.js"
import type { ChildLinkSpec, Device, DeviceKind, LinksService, VethPairSpec } from "../services/Links.js"
import type { SandboxNamespace } from "../services/Namespaces.js"
import { namespaceFd } from "./handle.js"
import { attempt } from "./attempt.js"
import * as libc from "./libc.js"
import { openRouteSocket, type RouteSocket, withRouteSocket } from "./routeSocket.js"
import * as Rtnl from "./rtnetlink.js"

const { ENODEV, EOPNOTSUPP } = osConstants.errno
/** IFNAMSIZ less the NUL: no device can have a longer name. */
const MAX_IFNAME = 15
const CREATE = Rtnl.NLM_F_REQUEST | Rtnl.NLM_F_ACK | Rtnl.NLM_F_CREATE | Rtnl.NLM_F_EXCL
const CHANGE = Rtnl.NLM_F_REQUEST | Rtnl.NLM_F_ACK
const DUMP = Rtnl.NLM_F_REQUEST | Rtnl.NLM_F_ACK | Rtnl.NLM_F_DUMP

// ---- messages --------------------------------------------------------------------------

const getLinkByName = (name: string) =>
  Rtnl.request(Rtnl.RTM_GETLINK, CHANGE, Rtnl.ifinfomsg(), Rtnl.string(Rtnl.IFLA_IFNAME, name))

/** The kernel finds the link by IFLA_IFNAME when the index is 0, so no lookup is needed. */
const setUpByName = (name: string) =>
  Rtnl.request(
    Rtnl.RTM_NEWLINK,
    CHANGE,
    Rtnl.ifinfomsg({ flags: Rtnl.IFF_UP, change: Rtnl.IFF_UP }),
    Rtnl.string(Rtnl.IFLA_IFNAME, name)
  )

/** Attributes of a sandbox end: born in the namespace, already named, sized and addressed. */
const sandboxEnd = (spec: VethPairSpec | ChildLinkSpec): Array<Uint8Array> => [
  Rtnl.string(Rtnl.IFLA_IFNAME, spec.sandboxName),
  Rtnl.u32(Rtnl.IFLA_NET_NS_FD, namespaceFd(spec.namespace)),
  ...(spec.mtu === undefined ? [] : [Rtnl.u32(Rtnl.IFLA_MTU, spec.mtu)]),
  ...(spec.mac === undefined ? [] : [Rtnl.bytes(Rtnl.IFLA_ADDRESS, Mac.toBytes(spec.mac))])
]

/**
 * One message for the whole pair: host end named, enslaved and up; the peer born
 * inside the sandbox (moving it later costs 16-19 ms of kernel time). The peer's
 * own ifinfomsg must not ask for IFF_UP: the kernel opens it before the pair is
 * linked and answers ENOTCONN. Only the sandbox end gets the MTU, as firejail does.
 */
const newVethPair = (spec: VethPairSpec) =>
  Rtnl.request(
    Rtnl.RTM_NEWLINK,
    CREATE,
    Rtnl.ifinfomsg({ flags: Rtnl.IFF_UP, change: Rtnl.IFF_UP }),
    Rtnl.string(Rtnl.IFLA_IFNAME, spec.hostName),
    Rtnl.u32(Rtnl.IFLA_MASTER, spec.bridge.index),
    Rtnl.nested(
      Rtnl.IFLA_LINKINFO,
      Rtnl.string(Rtnl.IFLA_INFO_KIND, "veth"),
      Rtnl.nested(Rtnl.IFLA_INFO_DATA, Rtnl.nested(Rtnl.VETH_INFO_PEER, Rtnl.ifinfomsg(), ...sandboxEnd(spec)))
    )
  )

/** The parent index is resolved in the sending socket's namespace (the host's), the child is born in the sandbox. */
const newChildLink = (spec: ChildLinkSpec) =>
  Rtnl.request(
    Rtnl.RTM_NEWLINK,
    CREATE,
    Rtnl.ifinfomsg(),
    Rtnl.u32(Rtnl.IFLA_LINK, spec.parent.index),
    ...sandboxEnd(spec),
    Rtnl.nested(
      Rtnl.IFLA_LINKINFO,
      Rtnl.string(Rtnl.IFLA_INFO_KIND, spec.kind),
      Rtnl.nested(
        Rtnl.IFLA_INFO_DATA,
        spec.kind === "macvlan"
          ? Rtnl.u32(Rtnl.IFLA_MACVLAN_MODE, Rtnl.MACVLAN_MODE_BRIDGE)
          : Rtnl.u16(Rtnl.IFLA_IPVLAN_MODE, Rtnl.IPVLAN_MODE_L2)
      )
    )
  )

/** IFA_LOCAL is the interface's own address; IFA_ADDRESS equals it on a broadcast link. */
const newAddress = (index: number, cidr: Subnet.Cidr) =>
  Rtnl.request(
    Rtnl.RTM_NEWADDR,
    CREATE,
    Rtnl.ifaddrmsg({ family: libc.AF_INET, prefix: cidr.prefix, index }),
    Rtnl.bytes(Rtnl.IFA_LOCAL, Ipv4.toBytes(cidr.address)),
    Rtnl.bytes(Rtnl.IFA_ADDRESS, Ipv4.toBytes(cidr.address)),
    // /31 and /32 have no broadcast address.
    ...(cidr.prefix <= 30 ? [Rtnl.bytes(Rtnl.IFA_BROADCAST, Ipv4.toBytes(Subnet.broadcast(cidr)))] : [])
  )

/** As `ip route add default via G` writes it: main table, boot protocol, universe scope. */
const newDefaultRoute = (gateway: Ipv4.Ipv4) =>
  Rtnl.request(
    Rtnl.RTM_NEWROUTE,
    CREATE,
    Rtnl.rtmsg({
      family: libc.AF_INET,
      table: Rtnl.RT_TABLE_MAIN,
      protocol: Rtnl.RTPROT_BOOT,
      scope: Rtnl.RT_SCOPE_UNIVERSE,
      type: Rtnl.RTN_UNICAST
    }),
    Rtnl.bytes(Rtnl.RTA_GATEWAY, Ipv4.toBytes(gateway))
  )

// ---- reading replies -------------------------------------------------------------------

const linkInfoKind = (attributes: Rtnl.Attributes): string | undefined => {
  const info = attributes.get(Rtnl.IFLA_LINKINFO)
  const kind = info && Rtnl.decodeAttributes(info).get(Rtnl.IFLA_INFO_KIND)
  return kind && Rtnl.readString(kind)
}

/** The index of a link by name, in the socket's namespace. */
/** A link's index and MAC, by name. */
const lookUp = (socket: RouteSocket, name: string): { readonly index: number; readonly mac: Mac.Mac } => {
  const [reply] = socket.request(getLinkByName(name))
  if (reply === undefined) throw new libc.SyscallError("RTM_GETLINK", ENODEV, `no reply for ${name}`)
  const link = Rtnl.decodeLink(reply.payload)
  const mac = link.attributes.get(Rtnl.IFLA_ADDRESS)
  return { index: link.index, mac: mac?.length === 6 ? Mac.fromBytes(mac) : ("00:00:00:00:00:00" as Mac.Mac) }
}

/** The first IPv4 address in the kernel's order, which puts the primary address first. */
const ipv4Addresses = (socket: RouteSocket, index: number): Array<Subnet.Cidr> => {
  const replies = socket.request(
    Rtnl.request(Rtnl.RTM_GETADDR, DUMP, Rtnl.ifaddrmsg({ family: libc.AF_INET, index }))
  )
  const out: Array<Subnet.Cidr> = []
  for (const reply of replies) {
    const address = Rtnl.decodeAddress(reply.payload)
    if (address.family !== libc.AF_INET || address.index !== index) continue
    const local = address.attributes.get(Rtnl.IFA_LOCAL) ?? address.attributes.get(Rtnl.IFA_ADDRESS)
    if (local !== undefined) out.push(Subnet.make(Ipv4.fromBytes(local), address.prefix))
  }
  return out
}

const defaultGateway = (socket: RouteSocket): Option.Option<Ipv4.Ipv4> => {
  // The main table is picked out here, not by a kernel-side filter: a host has few routes.
  const replies = socket.request(Rtnl.request(Rtnl.RTM_GETROUTE, DUMP, Rtnl.rtmsg({ family: libc.AF_INET })))
  for (const reply of replies) {
    const route = Rtnl.decodeRoute(reply.payload)
    const tableAttribute = route.attributes.get(Rtnl.RTA_TABLE)
    const table = tableAttribute === undefined ? route.table : Rtnl.readU32(tableAttribute)
    const gateway = route.attributes.get(Rtnl.RTA_GATEWAY)
    if (table === Rtnl.RT_TABLE_MAIN && route.dstLen === 0 && route.type === Rtnl.RTN_UNICAST && gateway) {
      return Option.some(Ipv4.fromBytes(gateway))
    }
  }
  return Option.none()
}

// ---- the service -----------------------------------------------------------------------

/** Brings a link up by name inside a namespace; the Namespaces layer uses it for `lo`. Throws SyscallError. */
export const bringUp = (namespaceFd: number, name: string): void => {
  withRouteSocket({ fd: namespaceFd }, (socket) => socket.request(setUpByName(name)))
}

export const makeLinks = (options: {
  readonly hostNamespace?: string
}): Effect.Effect<LinksService, KernelError, Scope.Scope> =>
  Effect.gen(function* () {
    const { hostNamespace } = options
    const where = hostNamespace === undefined ? undefined : { path: hostNamespace }
    const host = yield* Effect.acquireRelease(
      attempt(`open a netlink socket in ${hostNamespace ?? "the host namespace"}`, () => openRouteSocket(where)),
      (socket) => Effect.sync(() => socket.close())
    )

    /** Work inside a sandbox: a socket opened there for this call only (about 60 µs), so none outlives the namespace. */
    const inSandbox = <A>(namespace: SandboxNamespace, operation: string, use: (socket: RouteSocket) => A) =>
      attempt(operation, () => withRouteSocket({ fd: namespaceFd(namespace) }, use))

    /** sysfs shows the namespace of whoever mounted it, so it only speaks for our own namespace. */
    const isWireless = (name: string): boolean =>
      hostNamespace === undefined && existsSync(`/sys/class/net/${name}/wireless`)

    const readDevice = (name: string): Effect.Effect<Device, DeviceNotFound | KernelError> =>
      name.length === 0 || name.length > MAX_IFNAME || name.includes("/")
        ? Effect.fail(new DeviceNotFound({ device: name }))
        : attempt(`read device ${name}`, () => {
            const [reply] = host.request(getLinkByName(name))
            if (reply === undefined) throw new libc.SyscallError("RTM_GETLINK", ENODEV)
            const link = Rtnl.decodeLink(reply.payload)
            const mac = link.attributes.get(Rtnl.IFLA_ADDRESS)
            const mtu = link.attributes.get(Rtnl.IFLA_MTU)
            const kind: DeviceKind =
              linkInfoKind(link.attributes) === "bridge" ? "bridge" : isWireless(name) ? "wireless" : "ethernet"
            return {
              name,
              index: link.index,
              kind,
              mac: mac?.length === 6 ? Mac.fromBytes(mac) : ("00:00:00:00:00:00" as Mac.Mac),
              mtu: mtu === undefined ? 0 : Rtnl.readU32(mtu),
              addresses: ipv4Addresses(host, link.index)
            }
          }).pipe(
            Effect.mapError((error) => (error.errno === ENODEV ? new DeviceNotFound({ device: name }) : error))
          )

    const createChildLink = (spec: ChildLinkSpec): Effect.Effect<void, KernelError | IpvlanUnsupported> =>
      attempt(`create ${spec.kind} ${spec.sandboxName} on ${spec.parent.name}`, () => {
        host.request(newChildLink(spec))
      }).pipe(
        Effect.mapError((error) =>
          spec.kind === "ipvlan" &&
          error.errno === EOPNOTSUPP &&
          (error.detail === undefined || error.detail.includes("Unknown device type"))
            ? new IpvlanUnsupported({ device: spec.parent.name })
            : error
        )
      )

    const service: LinksService = {
      readDevice,
      hostGateway: attempt("read the default route", () => defaultGateway(host)),
      createVethPair: (spec) =>
        attempt(`create veth pair ${spec.hostName} on ${spec.bridge.name}`, () => {
          host.request(newVethPair(spec))
        }),
      createChildLink,
      setUp: (namespace, setup) =>
        inSandbox(namespace, `configure ${setup.name} in the sandbox`, (socket) => {
          const { index, mac } = lookUp(socket, setup.name)
          if (Option.isSome(setup.address)) socket.request(newAddress(index, setup.address.value))
          socket.request(setUpByName(setup.name))
          return mac
        }),
      addDefaultRoute: (namespace, gateway) =>
        inSandbox(namespace, `add the default route via ${Ipv4.format(gateway)} in the sandbox`, (socket) => {
          socket.request(newDefaultRoute(gateway))
        }),
      deleteHostLink: (name) =>
        attempt(`delete link ${name}`, () => {
          host.request(Rtnl.request(Rtnl.RTM_DELLINK, CHANGE, Rtnl.ifinfomsg(), Rtnl.string(Rtnl.IFLA_IFNAME, name)))
        }).pipe(Effect.catchIf((error) => error.errno === ENODEV, () => Effect.void))
    }
    return service
  })
