/**
 * Test labs on the real kernel: each lab is its own network namespace named
 * `njt-<random>`, built with iproute2 and deleted when its scope closes, also
 * when the test fails. Nothing here touches the root namespace's interfaces.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { Effect } from "effect"
import { describe, it } from "vitest"

const probeKernel = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
  const name = `njt-probe-${randomBytes(3).toString("hex")}`
  try {
    execFileSync("ip", ["netns", "add", name], { stdio: "pipe" })
    execFileSync("ip", ["netns", "del", name], { stdio: "pipe" })
    return undefined
  } catch (error) {
    return `cannot create network namespaces: ${String(error).split("\n")[0]}`
  }
}

/** Why kernel tests cannot run here, or undefined when they can. */
export const kernelUnavailable: string | undefined = probeKernel()

/**
 * A describe block for tests that need root and a kernel: skipped with the
 * reason when they cannot run, or failed when NETJAIL_REQUIRE_KERNEL is set (CI).
 */
export const describeKernel = (name: string, body: () => void) => {
  if (kernelUnavailable === undefined) return describe(name, body)
  if (process.env.NETJAIL_REQUIRE_KERNEL) {
    return describe(name, () => {
      it("needs a kernel", () => {
        throw new Error(`NETJAIL_REQUIRE_KERNEL is set but ${kernelUnavailable}`)
      })
    })
  }
  return describe.skip(`${name} (skipped: ${kernelUnavailable})`, body)
}

export class Lab {
  readonly path: string
  constructor(readonly name: string) {
    this.path = `/run/netns/${name}`
  }

  /** `ip -n <lab> ...args`; throws with iproute2's message on failure. */
  ip(...args: ReadonlyArray<string>): string {
    return execFileSync("ip", ["-n", this.name, ...args], { encoding: "utf8", stdio: "pipe" })
  }

  /** `ip -json` as the independent oracle of what the kernel holds. */
  json<A = any>(...args: ReadonlyArray<string>): A {
    return JSON.parse(execFileSync("ip", ["-json", "-n", this.name, ...args], { encoding: "utf8", stdio: "pipe" }))
  }

  /** Runs a command inside the lab namespace. */
  exec(command: string, ...args: ReadonlyArray<string>): string {
    return execFileSync("ip", ["netns", "exec", this.name, command, ...args], { encoding: "utf8", stdio: "pipe" })
  }

  linkNames(): Array<string> {
    return this.json<Array<{ ifname: string }>>("link", "show").map((l) => l.ifname).sort()
  }

  /** A bridge with an explicit MAC (a bridge without one goes to 00:00:.. when its ports leave) and an address. */
  bridge(name: string, cidr: string | undefined, mac = "02:00:00:00:00:01"): this {
    this.ip("link", "add", name, "address", mac, "type", "bridge")
    this.ip("link", "set", name, "up")
    if (cidr) this.ip("addr", "add", cidr, "dev", name)
    return this
  }

  /**
   * A peer host on the bridge: its own namespace `<lab>-<id>` holding one veth
   * end with the address; the other end is a bridge port. Returns the peer's MAC.
   */
  peer(bridge: string, id: string, cidr: string): string {
    const ns = `${this.name}-${id}`
    execFileSync("ip", ["netns", "add", ns], { stdio: "pipe" })
    this.peers.push(ns)
    this.ip("link", "add", `p${id}`, "type", "veth", "peer", "name", "eth0", "netns", ns)
    this.ip("link", "set", `p${id}`, "master", bridge, "up")
    execFileSync("ip", ["-n", ns, "addr", "add", cidr, "dev", "eth0"], { stdio: "pipe" })
    execFileSync("ip", ["-n", ns, "link", "set", "eth0", "up"], { stdio: "pipe" })
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"], { stdio: "pipe" })
    const [link] = JSON.parse(
      execFileSync("ip", ["-json", "-n", ns, "link", "show", "eth0"], { encoding: "utf8", stdio: "pipe" })
    )
    return link.address
  }

  readonly peers: Array<string> = []

  delete(): void {
    for (const ns of [...this.peers, this.name]) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "pipe" })
      } catch {
        // already gone
      }
    }
  }
}

export const newLab = (): Lab => {
  const lab = new Lab(`njt-${randomBytes(4).toString("hex")}`)
  execFileSync("ip", ["netns", "add", lab.name], { stdio: "pipe" })
  execFileSync("ip", ["-n", lab.name, "link", "set", "lo", "up"], { stdio: "pipe" })
  return lab
}

/** A lab for the length of a scope. */
export const lab = Effect.acquireRelease(Effect.sync(newLab), (l) => Effect.sync(() => l.delete()))

export const labExists = (name: string) => existsSync(`/run/netns/${name}`)
