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

/** A command run inside the lab namespace: `ip netns exec <lab> …`. */
export const inLab = (lab: Lab, command: ReadonlyArray<string>) => ({
  command: "ip",
  args: ["netns", "exec", lab.name, ...command]
})

/** The names of a bridge's ports in the lab (br0 by default), from `ip -json` (the independent oracle). */
export const bridgePorts = (lab: Lab, bridge = BRIDGE): Array<string> =>
  (JSON.parse(lab.ip("-json", "link", "show", "master", bridge)) as Array<{ ifname: string }>)
    .map((link) => link.ifname)
    .sort()

// ---- further segments and crowds, for the scenarios that need them ---------------------

/** Another bridge in the lab, with an explicit MAC (see createLab) and its address, e.g. 198.18.1.1/24. */
export interface Segment {
  readonly bridge: string
  readonly cidr: string
}

export const addSegment = (lab: Lab, segment: Segment, mac: string): void => {
  lab.ip("link", "add", segment.bridge, "address", mac, "type", "bridge")
  lab.ip("link", "set", segment.bridge, "up")
  lab.ip("addr", "add", segment.cidr, "dev", segment.bridge)
}

/** Deletes a segment's bridge; what netjail or firejail left on it goes with it. Never throws. */
export const removeSegment = (lab: Lab, segment: Segment): void => {
  try {
    lab.ip("link", "del", segment.bridge)
  } catch {
    // the lab is gone already, or the bridge
  }
}

/** A peer host that holds many addresses on its one interface: its kernel answers ARP for every one. */
export interface Host {
  readonly namespace: string
  /** Its bridge port in the lab. */
  readonly port: string
  readonly addresses: ReadonlyArray<string>
}

/**
 * A host in its own namespace `<lab>-<id>` (id: at most 13 characters, it also
 * names the port `p<id>`), wired to `bridge`, holding `addresses` (a.b.c.d)
 * with the given prefix, added in one `ip -batch`.
 */
export const addHost = (lab: Lab, bridge: string, id: string, addresses: ReadonlyArray<string>, prefix: number): Host => {
  const namespace = `${lab.name}-${id}`
  const port = `p${id}`
  addNamespace(namespace)
  lab.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace)
  lab.ip("link", "set", port, "master", bridge, "up")
  ip("-n", namespace, "link", "set", "lo", "up")
  ip("-n", namespace, "link", "set", "eth0", "up")
  if (addresses.length > 0) {
    execFileSync("ip", ["-n", namespace, "-batch", "-"], {
      input: addresses.map((a) => `addr add ${a}/${prefix} dev eth0`).join("\n") + "\n",
      stdio: ["pipe", "pipe", "pipe"]
    })
  }
  return { namespace, port, addresses }
}

/** Deletes a host's namespace (its veth pair goes with it). Never throws; returns why it could not. */
export const removeHost = (host: Host): string | undefined => deleteNamespace(host.namespace)

/** Waits (polling, up to `millis`) until the bridge has exactly these ports again; true if it does. */
export const portsSettled = async (lab: Lab, bridge: string, expected: ReadonlyArray<string>, millis = 10_000): Promise<boolean> => {
  const want = [...expected].sort().join(",")
  const deadline = Date.now() + millis
  for (;;) {
    if (bridgePorts(lab, bridge).join(",") === want) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Deletes one namespace this process created (and forgets it). Never throws; returns why it could not. */
export const deleteNamespace = (name: string): string | undefined => {
  const at = created.indexOf(name)
  if (at === -1) return `${name} was not created by this run`
  if (!existsSync(`/run/netns/${name}`)) {
    created.splice(at, 1)
    return undefined
  }
  try {
    ip("netns", "del", name)
    created.splice(at, 1)
    return undefined
  } catch (error) {
    return `${name}: ${String((error as { stderr?: string }).stderr ?? error).trim()}`
  }
}

/**
 * Registers a namespace the caller is about to create itself (say, with a
 * timed `ip netns add`), so that the clean-up deletes it whatever happens next.
 */
export const rememberNamespace = (name: string): void => {
  if (!name.startsWith(LAB_PREFIX)) throw new Error(`${name}: the bench only creates ${LAB_PREFIX}* namespaces`)
  created.push(name)
}

/** Forgets a remembered namespace the caller has deleted itself. */
export const forgetNamespace = (name: string): void => {
  const at = created.indexOf(name)
  if (at !== -1 && !existsSync(`/run/netns/${name}`)) created.splice(at, 1)
}

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
 * What the CLI runs left in netjail's lease registry for the lab's bridges
 * (read only: it is netjail's state, reported here, not cleaned): per segment
 * directory `<lab inode>-<bridge>`, its entries.
 */
export const leftoverLeases = (inode: number): Map<string, Array<string>> => {
  const out = new Map<string, Array<string>>()
  const segments = existsSync(LEASES) ? readdirSync(LEASES).filter((d) => d.startsWith(`${inode}-`)) : []
  for (const segment of segments) {
    try {
      out.set(`${LEASES}/${segment}`, readdirSync(`${LEASES}/${segment}`))
    } catch {
      // removed meanwhile
    }
  }
  return out
}
