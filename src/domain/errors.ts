/**
 * Every expected failure of netjail, each with the sentence a person reads;
 * firejail's wording is kept where firejail has one, so scripts that grep for
 * it keep working. `exitCodeFor` is the one place failures become exit codes.
 */
import { Duration, Schema } from "effect"
import * as Ipv4 from "./Ipv4.js"

const ip = (value: Ipv4.Ipv4) => Ipv4.format(value)

// ---- configuration: caught before anything is touched --------------------------------

export class LoopbackDevice extends Schema.TaggedError<LoopbackDevice>()("LoopbackDevice", {}) {
  override get message() {
    return "cannot attach to lo device"
  }
}

export class TooManyDevices extends Schema.TaggedError<TooManyDevices>()("TooManyDevices", {}) {
  override get message() {
    return "maximum 4 network devices are allowed"
  }
}

export class NoNetworkDevice extends Schema.TaggedError<NoNetworkDevice>()("NoNetworkDevice", {
  option: Schema.String
}) {
  override get message() {
    return "no network device configured"
  }
}

export class NetNoneExclusive extends Schema.TaggedError<NetNoneExclusive>()("NetNoneExclusive", {}) {
  override get message() {
    return "--net and --net=none are mutually exclusive"
  }
}

export class ConfiguredTwice extends Schema.TaggedError<ConfiguredTwice>()("ConfiguredTwice", {
  what: Schema.Literal("IP address", "network mask", "IP range", "MAC address", "MTU", "veth name")
}) {
  override get message() {
    return `cannot configure the ${this.what} twice for the same interface`
  }
}

export class InvalidIpAddress extends Schema.TaggedError<InvalidIpAddress>()("InvalidIpAddress", {
  value: Schema.String
}) {
  override get message() {
    return `invalid IP address: ${this.value}`
  }
}

export class InvalidNetmask extends Schema.TaggedError<InvalidNetmask>()("InvalidNetmask", {
  value: Schema.String
}) {
  override get message() {
    return `invalid network mask: ${this.value}`
  }
}

export class InvalidMacAddress extends Schema.TaggedError<InvalidMacAddress>()("InvalidMacAddress", {
  value: Schema.String,
  multicast: Schema.Boolean
}) {
  override get message() {
    return this.multicast ? `invalid MAC address (multicast): ${this.value}` : `invalid MAC address: ${this.value}`
  }
}

export class InvalidMtu extends Schema.TaggedError<InvalidMtu>()("InvalidMtu", { value: Schema.String }) {
  override get message() {
    return `invalid mtu value: ${this.value} (576..9198)`
  }
}

export class InvalidIpRange extends Schema.TaggedError<InvalidIpRange>()("InvalidIpRange", {
  value: Schema.String
}) {
  override get message() {
    return `invalid IP range: ${this.value}`
  }
}

export class InvalidVethName extends Schema.TaggedError<InvalidVethName>()("InvalidVethName", {
  value: Schema.String
}) {
  override get message() {
    return this.value === ""
      ? "no veth-name configured"
      : `invalid veth name ${JSON.stringify(this.value)}: at most 15 bytes, no '/', ':' or white space`
  }
}

export class DefaultGatewayWithoutNetwork
  extends Schema.TaggedError<DefaultGatewayWithoutNetwork>()("DefaultGatewayWithoutNetwork", {})
{
  override get message() {
    return "option --defaultgw requires at least one network or one interface to be configured"
  }
}

export class InvalidOption extends Schema.TaggedError<InvalidOption>()("InvalidOption", {
  option: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.option}: ${this.reason}`
  }
}

export type ConfigError =
  | LoopbackDevice
  | TooManyDevices
  | NoNetworkDevice
  | NetNoneExclusive
  | ConfiguredTwice
  | InvalidIpAddress
  | InvalidNetmask
  | InvalidMacAddress
  | InvalidMtu
  | InvalidIpRange
  | InvalidVethName
  | DefaultGatewayWithoutNetwork
  | InvalidOption

// ---- the device and the segment: caught by the pipeline, before anything is created ----

export class DeviceNotFound extends Schema.TaggedError<DeviceNotFound>()("DeviceNotFound", {
  device: Schema.String
}) {
  override get message() {
    return `cannot find network device ${this.device}`
  }
}

export class SubnetTooSmall extends Schema.TaggedError<SubnetTooSmall>()("SubnetTooSmall", {
  device: Schema.String,
  prefix: Schema.Number
}) {
  override get message() {
    return `the software is not supported for /31 networks (${this.device} is a /${this.prefix})`
  }
}

export class AddressOutsideSubnet extends Schema.TaggedError<AddressOutsideSubnet>()("AddressOutsideSubnet", {
  address: Ipv4.Ipv4,
  device: Schema.String
}) {
  override get message() {
    return `the IP address is not in the interface range (${ip(this.address)} on ${this.device})`
  }
}

export class NetworkAddress extends Schema.TaggedError<NetworkAddress>()("NetworkAddress", {
  address: Ipv4.Ipv4
}) {
  override get message() {
    return `the IP address is a network address (${ip(this.address)})`
  }
}

export class AddressIsInterface extends Schema.TaggedError<AddressIsInterface>()("AddressIsInterface", {
  address: Ipv4.Ipv4,
  device: Schema.String
}) {
  override get message() {
    return `${ip(this.address)} is interface ${this.device} address`
  }
}

export class AddressIsGateway extends Schema.TaggedError<AddressIsGateway>()("AddressIsGateway", {
  address: Ipv4.Ipv4
}) {
  override get message() {
    return `${ip(this.address)} is the default gateway`
  }
}

export class AddressInUse extends Schema.TaggedError<AddressInUse>()("AddressInUse", {
  address: Ipv4.Ipv4
}) {
  override get message() {
    return `IP address ${ip(this.address)} is already in use`
  }
}

export class NoFreeAddress extends Schema.TaggedError<NoFreeAddress>()("NoFreeAddress", {
  device: Schema.String
}) {
  override get message() {
    return "cannot assign an IP address; it looks like all of them are in use."
  }
}

export class IpRangeOutsideSubnet extends Schema.TaggedError<IpRangeOutsideSubnet>()("IpRangeOutsideSubnet", {
  device: Schema.String
}) {
  override get message() {
    return `IP range addresses not in network range (${this.device})`
  }
}

export class GatewayOutOfRange extends Schema.TaggedError<GatewayOutOfRange>()("GatewayOutOfRange", {
  gateway: Ipv4.Ipv4
}) {
  override get message() {
    return `default gateway ${ip(this.gateway)} is not in the range of any network`
  }
}

export class AddressNotAnswering extends Schema.TaggedError<AddressNotAnswering>()("AddressNotAnswering", {
  address: Ipv4.Ipv4,
  device: Schema.String,
  timeout: Schema.DurationFromSelf
}) {
  override get message() {
    return `the sandbox address ${ip(this.address)} did not answer ARP on ${this.device} within ${
      Duration.format(this.timeout)
    }`
  }
}

export class LockTimeout extends Schema.TaggedError<LockTimeout>()("LockTimeout", {
  path: Schema.String,
  timeout: Schema.DurationFromSelf
}) {
  override get message() {
    return `timeout occurred while trying to lock ${this.path} (waited ${Duration.format(this.timeout)})`
  }
}

export class IpvlanUnsupported extends Schema.TaggedError<IpvlanUnsupported>()("IpvlanUnsupported", {
  device: Schema.String
}) {
  override get message() {
    return `cannot create an ipvlan interface on ${this.device}: this kernel has no ipvlan driver (CONFIG_IPVLAN)`
  }
}

export class MtuAboveParent extends Schema.TaggedError<MtuAboveParent>()("MtuAboveParent", {
  mtu: Schema.Number,
  device: Schema.String,
  parentMtu: Schema.Number
}) {
  override get message() {
    return `invalid mtu value: ${this.mtu} is above ${this.device}'s MTU ${this.parentMtu}, which a macvlan or ipvlan cannot exceed`
  }
}

export class NotRoot extends Schema.TaggedError<NotRoot>()("NotRoot", {}) {
  override get message() {
    return "netjail needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run it with sudo"
  }
}

/** A refusal from the kernel: errno, its name and the kernel's own explanation (extended ack). */
export class KernelError extends Schema.TaggedError<KernelError>()("KernelError", {
  operation: Schema.String,
  errno: Schema.Number,
  code: Schema.String,
  detail: Schema.optional(Schema.String)
}) {
  override get message() {
    const hint = this.errno === 1 ? " (netjail needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN)" : ""
    return `${this.operation}: ${this.code}${this.detail ? ` [${this.detail}]` : ""}${hint}`
  }
}

export type NetworkError =
  | DeviceNotFound
  | SubnetTooSmall
  | AddressOutsideSubnet
  | NetworkAddress
  | AddressIsInterface
  | AddressIsGateway
  | AddressInUse
  | NoFreeAddress
  | IpRangeOutsideSubnet
  | GatewayOutOfRange
  | AddressNotAnswering
  | LockTimeout
  | IpvlanUnsupported
  | MtuAboveParent
  | NotRoot
  | KernelError

// ---- the sandboxed command ------------------------------------------------------------

export class CommandNotFound extends Schema.TaggedError<CommandNotFound>()("CommandNotFound", {
  command: Schema.String
}) {
  override get message() {
    return `cannot run ${this.command}: command not found`
  }
}

export class CommandNotExecutable extends Schema.TaggedError<CommandNotExecutable>()("CommandNotExecutable", {
  command: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot run ${this.command}: ${this.reason}`
  }
}

export type CommandError = CommandNotFound | CommandNotExecutable

export type NetjailError = ConfigError | NetworkError | CommandError

/** Exit statuses: 1 as firejail for every refusal, the shell's 126/127 for the command. */
export const exitCodeFor = (error: NetjailError): number => {
  switch (error._tag) {
    case "LoopbackDevice":
    case "TooManyDevices":
    case "NoNetworkDevice":
    case "NetNoneExclusive":
    case "ConfiguredTwice":
    case "InvalidIpAddress":
    case "InvalidNetmask":
    case "InvalidMacAddress":
    case "InvalidMtu":
    case "InvalidIpRange":
    case "InvalidVethName":
    case "DefaultGatewayWithoutNetwork":
    case "InvalidOption":
    case "DeviceNotFound":
    case "SubnetTooSmall":
    case "AddressOutsideSubnet":
    case "NetworkAddress":
    case "AddressIsInterface":
    case "AddressIsGateway":
    case "AddressInUse":
    case "NoFreeAddress":
    case "IpRangeOutsideSubnet":
    case "GatewayOutOfRange":
    case "AddressNotAnswering":
    case "LockTimeout":
    case "IpvlanUnsupported":
    case "MtuAboveParent":
    case "NotRoot":
    case "KernelError":
      return 1
    case "CommandNotExecutable":
      return 126
    case "CommandNotFound":
      return 127
    default: {
      const unhandled: never = error
      return unhandled
    }
  }
}
