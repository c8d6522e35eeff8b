/**
 * netjail as a library: the sandbox pipeline, its configuration and errors,
 * the four services, and the Linux layer that implements them.
 */
export * from "./domain/Config.js"
export * as Errors from "./domain/errors.js"
export * as Ipv4 from "./domain/Ipv4.js"
export * as Mac from "./domain/Mac.js"
export * as Subnet from "./domain/Subnet.js"
export { checkConfig } from "./domain/validate.js"
export { type RunningSandbox, Sandbox, type SandboxInterface, type SandboxPlan } from "./pipeline/Sandbox.js"
export { Arp } from "./services/Arp.js"
export { HostLock } from "./services/HostLock.js"
export { Links } from "./services/Links.js"
export { Namespaces } from "./services/Namespaces.js"
export { layerLinux, type LinuxOptions } from "./linux/layer.js"
