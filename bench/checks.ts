/**
 * Every run checks its own result, so a fast wrong answer never looks like a
 * win: what each tool says it gave the sandbox (netjail's `--json` line,
 * firejail's interface table, the CNI result) must be a host of the segment's
 * subnet, not the bridge's, not one a peer holds, and the requested one when
 * static. The address arithmetic lives here too (dotted quads ↔ numbers).
 */
import { Either } from "effect"
import type { Finished } from "./processes.js"

export const toNumber = (address: string): number =>
  address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0)

export const toDotted = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".")

/** What a run on one segment may hand out. */
export interface Expected {
  /** The bridge's address and prefix, e.g. 198.18.0.1/24. */
  readonly bridgeCidr: string
  /** Addresses other hosts hold (or claim): handing one out is a wrong answer. */
  readonly held: ReadonlySet<string>
  /** The static address asked for, if any. */
  readonly wanted?: string
}

export const subnetOf = (cidr: string) => {
  const [address, prefixText] = cidr.split("/") as [string, string]
  const prefix = Number(prefixText)
  const size = 2 ** (32 - prefix)
  const network = toNumber(address) - (toNumber(address) % size)
  return { address, prefix, size, network, broadcast: network + size - 1 }
}

/** Every host address of the bridge's subnet, the bridge's own included, in ascending order. */
export const hostAddresses = (bridgeCidr: string): Array<string> => {
  const { broadcast, network } = subnetOf(bridgeCidr)
  return Array.from({ length: broadcast - network - 1 }, (_, i) => toDotted(network + 1 + i))
}

/** Why `cidr` (a.b.c.d/p) is a wrong answer, or undefined when it is a right one. */
export const wrongAddress = (expected: Expected, cidr: string): string | undefined => {
  const subnet = subnetOf(expected.bridgeCidr)
  const [address, prefix] = cidr.split("/")
  if (address === undefined || !/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return `no address (${cidr})`
  if (prefix !== undefined && Number(prefix) !== subnet.prefix) return `${cidr} has not the bridge's prefix /${subnet.prefix}`
  const n = toNumber(address)
  if (n <= subnet.network || n >= subnet.broadcast) return `${address} is not a host of ${toDotted(subnet.network)}/${subnet.prefix}`
  if (address === subnet.address) return `${address} is the bridge's own address`
  if (expected.held.has(address)) return `${address} is held by a peer`
  if (expected.wanted !== undefined && address !== expected.wanted) return `${address}, not the requested ${expected.wanted}`
  return undefined
}

// ---- what the tools report ------------------------------------------------------------------

export interface NetjailReport {
  readonly address: string
  readonly readyMillis: number
  readonly timings: Record<string, number>
}

/** netjail --json writes one JSON object on a line of stderr; the address of eth0 is checked. */
export const netjailReport = (expected: Expected) => (stderr: string): Either.Either<NetjailReport, string> => {
  const line = stderr.split("\n").find((l) => l.startsWith("{"))
  if (line === undefined) return Either.left(`no --json summary on stderr: ${stderr.trim().slice(0, 300)}`)
  let summary: { interfaces?: Array<{ name?: string; address?: string | null }>; readyMillis?: number; timings?: Record<string, number> }
  try {
    summary = JSON.parse(line)
  } catch {
    return Either.left(`unparsable --json summary: ${line}`)
  }
  const cidr = summary.interfaces?.find((i) => i.name === "eth0")?.address
  if (typeof cidr !== "string") return Either.left(`eth0 has no address in the summary: ${line}`)
  const wrong = wrongAddress(expected, cidr)
  if (wrong !== undefined) return Either.left(wrong)
  return Either.right({
    address: cidr.split("/")[0]!,
    readyMillis: summary.readyMillis ?? Number.NaN,
    timings: summary.timings ?? {}
  })
}

export interface FirejailReport {
  readonly address: string
  readonly initializedMillis: number | undefined
}

/** The line firejail prints once the sandbox is set up and the command starts. */
export const FIREJAIL_READY = /Child process initialized in ([\d.]+) ms/

/** firejail prints its interface table (`eth0  <mac>  <ip>  <mask>  UP`) and how long the child took. */
export const firejailReport = (expected: Expected) => (output: string): Either.Either<FirejailReport, string> => {
  const address = /^eth0\s+\S+\s+(\d+\.\d+\.\d+\.\d+)\s/m.exec(output)?.[1]
  if (address === undefined) return Either.left(`no eth0 line in firejail's output: ${output.trim().slice(0, 300)}`)
  const wrong = wrongAddress(expected, `${address}/${subnetOf(expected.bridgeCidr).prefix}`)
  if (wrong !== undefined) return Either.left(wrong)
  const initialized = FIREJAIL_READY.exec(output)?.[1]
  return Either.right({ address, initializedMillis: initialized === undefined ? undefined : Number(initialized) })
}

export const both = (f: Finished) => `${f.stdout}\n${f.stderr}`

/** firejail's and netjail's words for a subnet with no free address. */
export const NO_FREE_ADDRESS = "cannot assign an IP address; it looks like all of them are in use."
