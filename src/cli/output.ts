/**
 * What netjail tells the user on stderr: firejail's interface table and
 * gateway line, the dry-run plan, or one JSON object with `--json`, so it
 * never mixes with the sandboxed command's own output on stdout.
 */
import { Option } from "effect"
import * as Ipv4 from "../domain/Ipv4.js"
import * as Subnet from "../domain/Subnet.js"
import { sandboxName } from "../pipeline/configureBridge.js"
import type { RunningSandbox, SandboxInterface, SandboxPlan } from "../pipeline/Sandbox.js"

const column = (text: string, width: number) => text.slice(0, width).padEnd(width)

const row = (name: string, mac: string, ip: string, mask: string, status: string) =>
  `${column(name, 17)}${column(mac, 19)}${column(ip, 17)}${column(mask, 17)}${column(status, 6)}`.trimEnd()

/** firejail's `fnet printif`: only interfaces with IPv4 are listed; lo has no MAC. */
export const interfaceTable = (interfaces: ReadonlyArray<SandboxInterface>): string =>
  [
    row("Interface", "MAC", "IP", "Mask", "Status"),
    row("lo", "", "127.0.0.1", "255.0.0.0", "UP"),
    ...interfaces.flatMap((i) =>
      Option.toArray(Option.map(i.address, (a) =>
        row(
          i.name,
          i.mac,
          Ipv4.format(a.address),
          Ipv4.format(Subnet.maskOf(a.prefix)),
          "UP"
        )))
    )
  ].join("\n")

export const humanSummary = (sandbox: RunningSandbox): string =>
  [
    "",
    ...sandbox.warnings.map((w) => `Warning: ${w}`),
    interfaceTable(sandbox.interfaces),
    ...Option.toArray(Option.map(sandbox.gateway, (gw) => `Default gateway ${Ipv4.format(gw)}`)),
    ""
  ].join("\n") + "\n"

const jsonInterface = (i: SandboxInterface) => ({
  name: i.name,
  device: i.device,
  wiring: i.wiring,
  hostName: Option.getOrNull(i.hostName),
  address: Option.getOrNull(Option.map(i.address, Subnet.format)),
  mac: i.mac,
  mtu: i.mtu
})

export const jsonSummary = (sandbox: RunningSandbox, extra: Record<string, unknown>): string =>
  JSON.stringify({
    interfaces: sandbox.interfaces.map(jsonInterface),
    gateway: Option.getOrNull(Option.map(sandbox.gateway, Ipv4.format)),
    warnings: sandbox.warnings,
    timings: Object.fromEntries(sandbox.timings.map((t) => [t.phase, Math.round(t.millis * 1000) / 1000])),
    ...extra
  }) + "\n"

export const planSummary = (plan: SandboxPlan, json: boolean): string => {
  const interfaces = plan.bridges.map((b, i) => ({
    name: sandboxName(b.slot),
    device: b.device.name,
    wiring: b.wiring,
    address: b.wiring === "veth"
      ? Option.getOrNull(Option.map(plan.addresses[i]!, Subnet.format))
      : Option.isSome(b.subnet) ? "chosen inside the sandbox at start" : null,
    mtu: b.mtu
  }))
  const gateway = Option.getOrNull(Option.map(plan.gateway, Ipv4.format))
  if (json) return JSON.stringify({ dryRun: true, interfaces, gateway, warnings: plan.warnings }) + "\n"
  return [
    "Dry run: nothing was created.",
    ...plan.warnings.map((w) => `Warning: ${w}`),
    ...interfaces.map((i) => `  ${i.name}: ${i.wiring} on ${i.device}, address ${i.address ?? "none"}, mtu ${i.mtu}`),
    `  default gateway: ${gateway ?? "none"}`
  ].join("\n") + "\n"
}
