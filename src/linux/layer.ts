/**
 * The Linux layer: the four services against the running kernel, in-process
 * (rtnetlink, AF_PACKET, setns, flock through koffi). `hostNamespace` makes it
 * work on the devices of another namespace (/run/netns/NAME), as tests and
 * embedders managing another namespace's sandboxes do.
 */
import { Layer } from "effect"
import { Arp } from "../services/Arp.js"
import { HostLock } from "../services/HostLock.js"
import { Links } from "../services/Links.js"
import { Namespaces } from "../services/Namespaces.js"
import { makeArp } from "./arp.js"
import { makeLinks } from "./links.js"
import { DEFAULT_LOCK_PATH, makeHostLock } from "./lock.js"
import { makeNamespaces } from "./namespaces.js"

export interface LinuxOptions {
  /** A network namespace file whose devices the sandboxes attach to; the process's own when unset. */
  readonly hostNamespace?: string
  /** The host lock file; /run/netjail/netjail.lock when unset. */
  readonly lockPath?: string
}

export const layerLinux = (options: LinuxOptions = {}) =>
  Layer.mergeAll(
    Layer.scoped(Links, makeLinks(options)),
    Layer.sync(Arp, () => makeArp(options)),
    Layer.sync(Namespaces, () => makeNamespaces(options)),
    Layer.sync(HostLock, () => makeHostLock({ path: options.lockPath ?? DEFAULT_LOCK_PATH }))
  )
