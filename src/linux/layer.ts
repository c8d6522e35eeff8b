/**
 * The Linux layer: the four services against the running kernel, in-process
 * (rtnetlink, AF_PACKET, setns, flock through koffi). `hostNamespace` makes it
 * work on the devices of another namespace (/run/netns/NAME), as tests and
 * embedders managing another namespace's sandboxes do.
 */
import { join } from "node:path"
import { Layer } from "effect"
import { Arp } from "../services/Arp.js"
import { HostLock } from "../services/HostLock.js"
import { Links } from "../services/Links.js"
import { Namespaces } from "../services/Namespaces.js"
import { Registry } from "../services/Registry.js"
import { makeArp } from "./arp.js"
import { makeLinks } from "./links.js"
import { makeHostLock } from "./lock.js"
import { makeNamespaces } from "./namespaces.js"
import { makeRegistry } from "./registry.js"

export const DEFAULT_RUN_DIRECTORY = "/run/netjail"

export interface LinuxOptions {
  /** A network namespace file whose devices the sandboxes attach to; the process's own when unset. */
  readonly hostNamespace?: string
  /** Holds the host lock (netjail.lock) and the lease registry (leases/); /run/netjail when unset. */
  readonly runDirectory?: string
}

export const layerLinux = (options: LinuxOptions = {}) => {
  const directory = options.runDirectory ?? DEFAULT_RUN_DIRECTORY
  return Layer.mergeAll(
    Layer.scoped(Links, makeLinks(options)),
    Layer.sync(Arp, () => makeArp(options)),
    Layer.sync(Namespaces, () => makeNamespaces(options)),
    Layer.sync(HostLock, () => makeHostLock({ path: join(directory, "netjail.lock") })),
    Layer.sync(Registry, () => makeRegistry({ ...options, directory }))
  )
}
