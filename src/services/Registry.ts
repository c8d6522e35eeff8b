/**
 * The lease registry: which addresses of a segment are claimed by a sandbox
 * being started (probing) or running (active), and by whom. The host lock
 * guards only its updates, so concurrent starts probe in parallel yet never
 * pick the same address.
 */
import { Context, type Effect, type Scope } from "effect"
import type { AddressInUse, KernelError } from "../domain/errors.js"
import type { Ipv4 } from "../domain/Ipv4.js"

/** A process, named so that a recycled pid is not mistaken for the owner. */
export interface LeaseOwner {
  readonly pid: number
  readonly startTime: string
}

export interface LeaseDetails {
  /** The host device, as the user named it. */
  readonly device: string
  /** Once the sandbox runs: its namespace, its interface name, the host end of its veth pair. */
  readonly namespace?: string
  readonly interface?: string
  readonly hostVeth?: string
}

export interface Lease extends LeaseDetails {
  readonly segment: string
  readonly address: Ipv4
  readonly state: "probing" | "active"
  readonly owner: LeaseOwner
}

export interface RegistryService {
  /** The key of a host device's segment in the registry (the host namespace and the device). */
  readonly segmentOf: (device: string) => Effect.Effect<string, KernelError>
  /**
   * Under the host lock: removes leases whose owner is gone (dead, or its pid
   * reused) and unreadable entries; returns the removed leases and a line per problem.
   */
  readonly prune: Effect.Effect<{ readonly pruned: ReadonlyArray<Lease>; readonly problems: ReadonlyArray<string> }, KernelError>
  /** Under the host lock: the addresses of the segment that hold a lease, and in which state. */
  readonly leased: (segment: string) => Effect.Effect<ReadonlyMap<Ipv4, Lease["state"]>, KernelError>
  /** Takes a probing lease on a free address; it is released when the scope closes. */
  readonly take: (
    segment: string,
    address: Ipv4,
    details: LeaseDetails
  ) => Effect.Effect<void, AddressInUse | KernelError, Scope.Scope>
  /** Turns a held lease active, with what the sandbox now knows about itself. */
  readonly activate: (segment: string, address: Ipv4, details: LeaseDetails) => Effect.Effect<void, KernelError>
  /** Every lease, for `netjail list`; unreadable entries are reported, not fatal. */
  readonly list: Effect.Effect<{ readonly leases: ReadonlyArray<Lease>; readonly problems: ReadonlyArray<string> }, KernelError>
}

export class Registry extends Context.Tag("netjail/Registry")<Registry, RegistryService>() {}
