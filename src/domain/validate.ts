/**
 * The checks a configuration must pass before anything is touched: the ones
 * that need no kernel. The CLI and the library run the same checks.
 */
import { Effect } from "effect"
import { type InterfaceRequest, MAX_IFNAME, MAX_INTERFACES, MAX_MTU, MIN_MTU, type SandboxConfig } from "./Config.js"
import * as Errors from "./errors.js"
import * as Ipv4 from "./Ipv4.js"
import * as Mac from "./Mac.js"

const validIfname = (name: string) =>
  name.length > 0 && Buffer.byteLength(name) <= MAX_IFNAME && !/[/:\s]/.test(name) && name !== "." && name !== ".."

const checkInterface = (request: InterfaceRequest): Effect.Effect<void, Errors.ConfigError> =>
  Effect.gen(function*() {
    if (request.device === "lo") return yield* new Errors.LoopbackDevice()
    if (!validIfname(request.device)) {
      return yield* new Errors.InvalidOption({ option: "--net", reason: `invalid device name ${request.device}` })
    }
    if (request.mtu !== undefined && !(request.mtu >= MIN_MTU && request.mtu <= MAX_MTU)) {
      return yield* new Errors.InvalidMtu({ value: String(request.mtu) })
    }
    if (request.mac !== undefined && Mac.isMulticast(request.mac)) {
      return yield* new Errors.InvalidMacAddress({ value: request.mac, multicast: true })
    }
    if (request.iprange !== undefined && request.iprange.start >= request.iprange.end) {
      return yield* new Errors.InvalidIpRange({
        value: `${Ipv4.format(request.iprange.start)},${Ipv4.format(request.iprange.end)}`
      })
    }
    if (request.vethName !== undefined && !validIfname(request.vethName)) {
      return yield* new Errors.InvalidVethName({ value: request.vethName })
    }
  })

export const checkConfig = (config: SandboxConfig): Effect.Effect<SandboxConfig, Errors.ConfigError> =>
  Effect.gen(function*() {
    if (config.interfaces.length > MAX_INTERFACES) return yield* new Errors.TooManyDevices()
    for (const request of config.interfaces) yield* checkInterface(request)
    if (config.defaultGateway !== undefined && config.interfaces.length === 0) {
      return yield* new Errors.DefaultGatewayWithoutNetwork()
    }
    return config
  })
