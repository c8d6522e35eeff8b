/**
 * The benchmark lab: a network namespace `njb-<random>` holding the bridge br0
 * (198.18.0.1/24, explicit MAC) and a few peer hosts, each in its own
 * namespace `njb-<random>-<id>`. Built with iproute2, like the test labs; every
 * namespace created here is remembered and deleted synchronously, so the
 * clean-up also works from a signal handler or an `exit` listener.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, readdirSync, statSync } from "node:fs"

export const LAB_PREFIX = "njb-"
export const BRIDGE = "br0"
export const BRIDGE_MAC = "02:00:00:00:00:01"
export const SUBNET = "198.18.0.0/24"
export const BRIDGE_ADDRESS = "198.18.0.1"
export const PEER_ADDRESSES = ["198.18.0.2", "198.18.0.3"] as const
/** The static address both tools are given in the static-ip rows. */
export const STATIC_ADDRESS = "198.18.0.50"

/** Every namespace this process created and has not deleted yet, in creation order. */
const created: Array<string> = []

const ip = (...args: ReadonlyArray<string>): string =>
  execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

const addNamespace = (name: string): void => {
  ip("netns", "add", name)
  created.push(name)
}

export interface Peer {
  readonly namespace: string
  readonly address: string
  /** The peer's bridge port in the lab. */
  readonly port: string
}

export interface Lab {
  readonly name: string
  /** The namespace file, for layerLinux({ hostNamespace }). */
  readonly path: string
  /** The namespace's inode, which names its segment in netjail's lease registry. */
  readonly inode: number
  readonly peers: ReadonlyArray<Peer>
  /** `ip -n <lab> ...args`. */
  readonly ip: (...args: ReadonlyArray<string>) => string
}

/** Builds a new lab; on any failure what was built so far is deleted and the error rethrown. */
export const createLab = (): Lab => {
  const name = `${LAB_PREFIX}${randomBytes(4).toString("hex")}`
  const inLab = (...args: ReadonlyArray<string>) => ip("-n", name, ...args)
  try {
    addNamespace(name)
    inLab("link", "set", "lo", "up")
    // A bridge without an explicit MAC falls back to 00:00:00:00:00:00 when its last port leaves.
    inLab("link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge")
    inLab("link", "set", BRIDGE, "up")
    inLab("addr", "add", `${BRIDGE_ADDRESS}/24`, "dev", BRIDGE)
    const peers = PEER_ADDRESSES.map((address, i): Peer => {
      const id = String.fromCharCode(97 + i)
      const namespace = `${name}-${id}`
      const port = `p${id}`
      addNamespace(namespace)
      inLab("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace)
      inLab("link", "set", port, "master", BRIDGE, "up")
      ip("-n", namespace, "addr", "add", `${address}/24`, "dev", "eth0")
      ip("-n", namespace, "link", "set", "eth0", "up")
      ip("-n", namespace, "link", "set", "lo", "up")
      return { namespace, address, port }
    })
    const path = `/run/netns/${name}`
    return { name, path, inode: statSync(path).ino, peers, ip: inLab }
  } catch (error) {
    deleteAllNamespaces()
    throw error
  }
}

/** The names of br0's ports in the lab, from `ip -json` (the independent oracle). */
export const bridgePorts = (lab: Lab): Array<string> =>
  (JSON.parse(lab.ip("-json", "link", "show", "master", BRIDGE)) as Array<{ ifname: string }>)
    .map((link) => link.ifname)
    .sort()

/**
 * Deletes every namespace this process created, newest first; never any other.
 * Synchronous, idempotent, and it never throws: it returns what it could not delete.
 */
export const deleteAllNamespaces = (): Array<string> => {
  const failed: Array<string> = []
  while (created.length > 0) {
    const name = created.pop()!
    if (!existsSync(`/run/netns/${name}`)) continue
    try {
      ip("netns", "del", name)
    } catch (error) {
      failed.push(`${name}: ${String((error as { stderr?: string }).stderr ?? error).trim()}`)
    }
  }
  return failed
}

/** Namespaces with the bench prefix that still exist (ours or a crashed earlier run's), from `ip netns list`. */
export const leftoverNamespaces = (): Array<string> =>
  ip("netns", "list")
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(LAB_PREFIX))

/** Where the netjail CLI keeps its leases by default. */
export const LEASES = "/run/netjail/leases"

/**
 * What the CLI runs left in netjail's lease registry for the lab's bridge
 * (read only: it is netjail's state, reported here, not cleaned).
 */
export const leftoverLeases = (inode: number): { readonly directory: string; readonly entries: Array<string> } | undefined => {
  const directory = `${LEASES}/${inode}-${BRIDGE}`
  return existsSync(directory) ? { directory, entries: readdirSync(directory) } : undefined
}
