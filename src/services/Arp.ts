/**
 * ARP on one L2 segment: who holds which address, probed in batches with
 * RFC 5227 probes, and the sandbox's gratuitous announce.
 */
import { Context, type Duration, type Effect } from "effect"
import type { KernelError } from "../domain/errors.js"
import type { Ipv4 } from "../domain/Ipv4.js"
import type { Mac } from "../domain/Mac.js"
import type { SandboxNamespace } from "./Namespaces.js"

/** Where frames are sent from: a host device, or a device inside a sandbox namespace. */
export interface ArpEndpoint {
  readonly device: string
  readonly namespace?: SandboxNamespace
}

export interface ProbeRequest {
  readonly endpoint: ArpEndpoint
  readonly targets: ReadonlyArray<Ipv4>
  /**
   * Probes per target, one per window. Every window is read to its end, so a
   * late reply is never missed, unless every target is already claimed: then
   * nothing later can make one free, and the probe ends at once.
   */
  readonly probes: number
  readonly window: Duration.Duration
}

/** Why an address counts as taken: a host answered for it, or another host is probing for it too. */
export interface Claim {
  readonly mac: Mac
  readonly by: "reply" | "probe"
}

export interface ArpService {
  /** Probes every target at once; the result names the targets that are taken. */
  readonly probe: (request: ProbeRequest) => Effect.Effect<ReadonlyMap<Ipv4, Claim>, KernelError>
  /** Asks for one address until it answers or the timeout passes; returns as soon as it answers. */
  readonly awaitAnswer: (
    endpoint: ArpEndpoint,
    target: Ipv4,
    timeout: Duration.Duration
  ) => Effect.Effect<boolean, KernelError>
  /** One gratuitous ARP request from the sandbox, so neighbours update their caches. */
  readonly announce: (endpoint: ArpEndpoint, address: Ipv4) => Effect.Effect<void, KernelError>
}

export class Arp extends Context.Tag("netjail/Arp")<Arp, ArpService>() {}
