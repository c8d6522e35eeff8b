/**
 * Network devices: reading the host's, creating the sandbox's in one kernel
 * call each, configuring them inside the sandbox namespace, removing them.
 */
import { Context, type Effect, type Option } from "effect"
import type { DeviceNotFound, IpvlanUnsupported, KernelError } from "../domain/errors.js"
import type { Ipv4 } from "../domain/Ipv4.js"
import type { Mac } from "../domain/Mac.js"
import type { Cidr } from "../domain/Subnet.js"
import type { SandboxNamespace } from "./Namespaces.js"

/** How a host device is wired to a sandbox: bridges get a veth pair, others a macvlan or ipvlan child. */
export type DeviceKind = "bridge" | "ethernet" | "wireless"

export interface Device {
  readonly name: string
  readonly index: number
  readonly kind: DeviceKind
  readonly mac: Mac
  readonly mtu: number
  /** Every IPv4 address, in the kernel's order: the first gives the subnet, as firejail reads it. */
  readonly addresses: ReadonlyArray<Cidr>
}

export interface VethPairSpec {
  /** Host end: named, enslaved to the bridge, up. */
  readonly hostName: string
  readonly bridge: Device
  /** Sandbox end: born inside the namespace with this name, MTU and MAC. */
  readonly namespace: SandboxNamespace
  readonly sandboxName: string
  readonly mtu?: number
  readonly mac?: Mac
}

export interface ChildLinkSpec {
  readonly kind: "macvlan" | "ipvlan"
  readonly parent: Device
  readonly namespace: SandboxNamespace
  readonly sandboxName: string
  readonly mtu?: number
  readonly mac?: Mac
}

/** Settings applied to an interface inside the sandbox namespace, then brought up. */
export interface InterfaceSetup {
  readonly name: string
  readonly address: Option.Option<Cidr>
}

export interface LinksService {
  readonly readDevice: (name: string) => Effect.Effect<Device, DeviceNotFound | KernelError>
  /** The gateway of the host's default route, if it has one. */
  readonly hostGateway: Effect.Effect<Option.Option<Ipv4>, KernelError>
  readonly createVethPair: (spec: VethPairSpec) => Effect.Effect<void, KernelError>
  readonly createChildLink: (spec: ChildLinkSpec) => Effect.Effect<void, KernelError | IpvlanUnsupported>
  /** Returns the interface's MAC, which the kernel chose unless `--mac` did. */
  readonly setUp: (namespace: SandboxNamespace, setup: InterfaceSetup) => Effect.Effect<Mac, KernelError>
  readonly addDefaultRoute: (namespace: SandboxNamespace, gateway: Ipv4) => Effect.Effect<void, KernelError>
  /** Removes a host-side link (a veth end takes its peer with it); a link already gone is no error. */
  readonly deleteHostLink: (name: string) => Effect.Effect<void, KernelError>
}

export class Links extends Context.Tag("netjail/Links")<Links, LinksService>() {}
