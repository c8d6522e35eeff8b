/**
 * `netjail demo`: a first sandbox in a throwaway lab, so a newcomer sees
 * netjail work without touching the machine's own interfaces. The lab is a
 * network namespace with a bridge and three peer hosts, built with iproute2
 * (it is scaffolding, not netjail) and removed when the demo ends.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { Effect, Option } from "effect"
import { makeConfig } from "../domain/Config.js"
import * as Ipv4 from "../domain/Ipv4.js"
import { layerLinux } from "../linux/layer.js"
import { Sandbox } from "../pipeline/Sandbox.js"
import { Namespaces } from "../services/Namespaces.js"
import { humanSummary } from "./output.js"
import { requireRoot } from "./run.js"

const ip = (...args: Array<string>) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] })
const say = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

const PEERS = ["198.18.0.2", "198.18.0.3", "198.18.0.4"]

interface Lab {
  readonly name: string
  readonly namespaces: ReadonlyArray<string>
}

const buildLab = (): Lab => {
  const name = `nj-demo-${randomBytes(3).toString("hex")}`
  const namespaces = [name]
  try {
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    ip("-n", name, "link", "add", "br0", "address", "02:00:00:00:00:01", "type", "bridge")
    ip("-n", name, "link", "set", "br0", "up")
    ip("-n", name, "addr", "add", "198.18.0.1/24", "dev", "br0")
    PEERS.forEach((address, i) => {
      const peer = `${name}-p${i}`
      ip("netns", "add", peer)
      namespaces.push(peer)
      ip("-n", name, "link", "add", `peer${i}`, "type", "veth", "peer", "name", "eth0", "netns", peer)
      ip("-n", name, "link", "set", `peer${i}`, "master", "br0", "up")
      ip("-n", peer, "addr", "add", `${address}/24`, "dev", "eth0")
      ip("-n", peer, "link", "set", "eth0", "up")
    })
    return { name, namespaces }
  } catch (error) {
    removeLab({ name, namespaces })
    throw error
  }
}

const removeLab = (lab: Lab) => {
  for (const ns of [...lab.namespaces].reverse()) {
    try {
      ip("netns", "del", ns)
    } catch {
      // already gone
    }
  }
}

const vethsLeft = (lab: Lab): Array<string> =>
  JSON.parse(ip("-json", "-n", lab.name, "link", "show", "type", "veth").toString())
    .map((l: { ifname: string }) => l.ifname)
    .filter((n: string) => !n.startsWith("peer"))

export const demo = Effect.gen(function*() {
  yield* requireRoot
  const lab = yield* Effect.acquireRelease(Effect.sync(buildLab), (lab) => Effect.sync(() => removeLab(lab)))
  yield* say(`netjail demo: a throwaway lab in network namespace ${lab.name}`)
  yield* say(`  bridge br0 198.18.0.1/24; peer hosts ${PEERS.join(", ")} answer ARP on it`)
  yield* say(`  running: netjail --net=br0 -- ip -br addr show   (the lab stands in for your host)\n`)

  const status = yield* Effect.scoped(Effect.gen(function*() {
    const sandbox = yield* Sandbox.run(makeConfig({ interfaces: [{ device: "br0" }] }))
    yield* Effect.sync(() => process.stderr.write(humanSummary(sandbox)))
    const child = yield* (yield* Namespaces).spawn(sandbox.namespace, { command: "ip", args: ["-br", "addr", "show"] })
    const status = yield* child.exitStatus
    const address = Option.map(sandbox.interfaces[0]!.address, (a) => Ipv4.format(a.address))
    const phases = sandbox.timings.map((t) => `${t.phase} ${t.millis.toFixed(1)} ms`).join(", ")
    yield* say(`\n  the sandbox got ${Option.getOrElse(address, () => "no address")}: ARP-probed free, not a peer's, not the bridge's`)
    yield* say(`  ${sandbox.interfaces[0]!.hostName.pipe(Option.getOrElse(() => ""))} is its veth end in br0; setup: ${phases}`)
    return status
  })).pipe(Effect.provide(layerLinux({ hostNamespace: `/run/netns/${lab.name}` })))

  const left = vethsLeft(lab)
  yield* say(left.length === 0
    ? "  sandbox closed: its namespace and veth pair are gone; removing the lab."
    : `  left behind (a bug, please report it): ${left.join(", ")}`)
  yield* say(`\nNext: sudo node dist/netjail.mjs --net=<your bridge> -- <command>; see README.md.`)
  return status
}).pipe(Effect.scoped)
