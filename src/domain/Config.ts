/**
 * What a sandbox asks for: up to four interfaces, each wired to a host device,
 * and the global settings of the address choice. Pure data, as Schemas, so an
 * embedder can decode it from JSON and the CLI can print it back.
 */
import { Duration, Schema } from "effect"
import { Ipv4FromString } from "./Ipv4.js"
import { MacFromString } from "./Mac.js"

export const MAX_INTERFACES = 4
export const MIN_MTU = 576
export const MAX_MTU = 9198
/** IFNAMSIZ is 16 with the terminating NUL. */
export const MAX_IFNAME = 15

export const AddressMode = Schema.Union(
  Schema.TaggedStruct("Auto", {}),
  Schema.TaggedStruct("Static", { address: Ipv4FromString }),
  Schema.TaggedStruct("None", {})
)
export type AddressMode = typeof AddressMode.Type

export const IpRange = Schema.Struct({ start: Ipv4FromString, end: Ipv4FromString })
export type IpRange = typeof IpRange.Type

/** One `--net=<device>` with the options bound to it. */
export const InterfaceRequest = Schema.Struct({
  device: Schema.NonEmptyString,
  address: Schema.optionalWith(AddressMode, { default: () => ({ _tag: "Auto" as const }) }),
  iprange: Schema.optional(IpRange),
  netmask: Schema.optional(Ipv4FromString),
  mac: Schema.optional(MacFromString),
  mtu: Schema.optional(Schema.Int),
  vethName: Schema.optional(Schema.String),
  ipvlan: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type InterfaceRequest = typeof InterfaceRequest.Type

/** How addresses are probed: firejail's defaults are 2 probes of 500 ms. */
export const ProbePolicy = Schema.Struct({
  probes: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 30)), { default: () => 2 }),
  window: Schema.optionalWith(Schema.DurationFromMillis, { default: () => Duration.millis(500) })
})
export type ProbePolicy = typeof ProbePolicy.Type

export const SandboxConfig = Schema.Struct({
  /** Empty means `--net=none`: a namespace with only `lo`. */
  interfaces: Schema.optionalWith(Schema.Array(InterfaceRequest).pipe(Schema.maxItems(MAX_INTERFACES)), {
    default: () => []
  }),
  defaultGateway: Schema.optional(Ipv4FromString),
  probe: Schema.optionalWith(ProbePolicy, { default: () => ProbePolicy.make({}) }),
  /** Unset: wait for the host lock as long as it takes (concurrent starts queue). */
  lockTimeout: Schema.optional(Schema.DurationFromMillis),
  /** How long the sandbox address may take to answer ARP once configured. */
  answerTimeout: Schema.optionalWith(Schema.DurationFromMillis, { default: () => Duration.seconds(5) })
})
export type SandboxConfig = typeof SandboxConfig.Type
export const makeConfig = (input: typeof SandboxConfig.Encoded): SandboxConfig =>
  Schema.decodeSync(SandboxConfig)(input)

/** The whole command line: the sandbox, the command, and how to report. */
export const Invocation = Schema.Struct({
  sandbox: SandboxConfig,
  command: Schema.Array(Schema.String),
  output: Schema.Literal("table", "quiet", "json"),
  dryRun: Schema.Boolean,
  asRoot: Schema.Boolean
})
export type Invocation = typeof Invocation.Type
