/**
 * Section 7: the CNI reference plugins as a third column. The bridge plugin
 * with host-local IPAM is driven the way a container runtime drives it: a
 * container namespace per sandbox (`ip netns add`), then the plugin binary
 * with CNI_COMMAND=ADD and the network configuration on stdin, the command in
 * the namespace, DEL, and the namespace deleted. The plugin runs inside the
 * lab namespace (`ip netns exec <lab>`), so it finds the lab's bridge there.
 * host-local keeps its allocations in a temporary dataDir; it never probes
 * the segment, it trusts its own records.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { type Expected, subnetOf, toDotted, wrongAddress } from "./checks.js"
import type { Runner, Verdict } from "./compare.js"
import { forgetNamespace, type Lab, LAB_PREFIX, rememberNamespace } from "./lab.js"
import { type Finished, RunFailed, tail, timedRun } from "./processes.js"

export const CNI_PATH = "/usr/lib/cni"
export const CNI_INSTALL = "apt-get update && apt-get install -y containernetworking-plugins"
export const CNI_VERSION = "1.0.0"

export type Cni =
  | { readonly installed: true; readonly version: string }
  | { readonly installed: false; readonly reason: string }

export const detectCni = (): Cni => {
  const missing = ["bridge", "host-local"].filter((p) => !existsSync(join(CNI_PATH, p)))
  if (missing.length > 0) {
    return {
      installed: false,
      reason: `the CNI plugins (${missing.join(", ")}) are not in ${CNI_PATH}; install Debian's package with \`${CNI_INSTALL}\``
    }
  }
  let version = "unknown version"
  try {
    version = execFileSync("dpkg-query", ["-W", "-f", "${Version}", "containernetworking-plugins"], { encoding: "utf8", stdio: "pipe" }).trim()
  } catch {
    // not installed from the Debian package: the binaries are there all the same
  }
  return { installed: true, version: `containernetworking-plugins ${version} (bridge + host-local, spec ${CNI_VERSION})` }
}

/** The plugins' scratch state: host-local's dataDir, for the length of the scope. */
export const cniDataDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), `${LAB_PREFIX}cni-`))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export interface CniNetwork {
  readonly bridge: string
  /** The bridge's address and prefix; the gateway host-local reports. */
  readonly bridgeCidr: string
  /** host-local's range: the addresses it may hand out (inclusive). */
  readonly rangeStart: string
  readonly rangeEnd: string
  readonly dataDir: string
}

/** The network configuration a runtime would keep in /etc/cni/net.d, here on stdin. */
export const networkConfig = (network: CniNetwork): string => {
  const subnet = subnetOf(network.bridgeCidr)
  return JSON.stringify({
    cniVersion: CNI_VERSION,
    name: "njb",
    type: "bridge",
    bridge: network.bridge,
    isGateway: false,
    ipMasq: false,
    ipam: {
      type: "host-local",
      ranges: [[{
        subnet: `${toDotted(subnet.network)}/${subnet.prefix}`,
        rangeStart: network.rangeStart,
        rangeEnd: network.rangeEnd,
        gateway: subnet.address
      }]],
      routes: [{ dst: "0.0.0.0/0" }],
      dataDir: network.dataDir
    }
  })
}

let containers = 0

export interface CniReport {
  readonly address: string
  readonly addMillis: number
  readonly delMillis: number
}

const plugin = (lab: Lab, network: CniNetwork, command: "ADD" | "DEL", container: string, namespace: string) =>
  timedRun("ip", ["netns", "exec", lab.name, join(CNI_PATH, "bridge")], {
    input: networkConfig(network),
    environment: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: container,
      CNI_NETNS: `/run/netns/${namespace}`,
      CNI_IFNAME: "eth0",
      CNI_PATH
    }
  })

const ok = (line: string, f: Finished) =>
  f.code === 0 ? Effect.succeed(f) : Effect.fail(new RunFailed(line, `exit ${f.code ?? `signal ${f.signal}`}:\n${tail(f)}`))

/** The address of eth0 in an ADD result. */
const addedAddress = (stdout: string): Either.Either<string, string> => {
  try {
    const result = JSON.parse(stdout) as { ips?: Array<{ address?: string }> }
    const address = result.ips?.[0]?.address
    return typeof address === "string" ? Either.right(address) : Either.left(`no address in the ADD result: ${stdout.trim()}`)
  } catch {
    return Either.left(`unparsable ADD result: ${stdout.trim().slice(0, 300)}`)
  }
}

/**
 * One container's network: its namespace, then ADD. The release runs DEL and
 * deletes the namespace, also when the ADD failed or its answer was wrong.
 */
export const cniAttach = (lab: Lab, network: CniNetwork) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const id = ++containers
      const namespace = `${lab.name}-c${id}`
      rememberNamespace(namespace)
      return { container: `njb${id}`, namespace }
    }),
    ({ container, namespace }) =>
      Effect.gen(function*() {
        yield* Effect.either(plugin(lab, network, "DEL", container, namespace))
        yield* Effect.either(timedRun("ip", ["netns", "del", namespace]))
        forgetNamespace(namespace)
      })
  ).pipe(
    Effect.flatMap(({ container, namespace }) =>
      Effect.gen(function*() {
        yield* Effect.flatMap(timedRun("ip", ["netns", "add", namespace]), (f) => ok(`ip netns add ${namespace}`, f))
        const added = yield* Effect.flatMap(plugin(lab, network, "ADD", container, namespace), (f) => ok("bridge ADD", f))
        return { container, namespace, added, address: addedAddress(added.stdout) }
      })
    )
  )

/**
 * A runtime's whole lifecycle of one container, timed as one run like
 * `netjail -- true`: namespace, ADD, `true` inside, DEL, namespace deleted.
 */
export const cniRunner = (lab: Lab, network: CniNetwork, expected: Expected, label: string): Runner<CniReport> => ({
  label,
  line: `ip netns add C; CNI_COMMAND=ADD ${CNI_PATH}/bridge < config; ip netns exec C true; CNI_COMMAND=DEL …; ip netns del C` +
    ` (config: ${networkConfig(network)})`,
  run: Effect.gen(function*() {
    const start = performance.now()
    const attached = yield* Effect.scoped(Effect.gen(function*() {
      const attached = yield* cniAttach(lab, network)
      yield* Effect.flatMap(timedRun("ip", ["netns", "exec", attached.namespace, "true"]), (f) => ok("true in the container", f))
      return { ...attached, delStart: performance.now() }
    }))
    const millis = performance.now() - start
    const verdict: Verdict<CniReport> = Either.match(attached.address, {
      onLeft: (why) => ({ _tag: "Wrong", why }),
      onRight: (address) => {
        const wrong = wrongAddress(expected, address)
        return wrong !== undefined
          ? { _tag: "Wrong", why: wrong }
          : {
            _tag: "Sample",
            millis,
            extra: { address: address.split("/")[0]!, addMillis: attached.added.millis, delMillis: performance.now() - attached.delStart }
          }
      }
    })
    return verdict
  })
})

/** Section 7: how the CNI column of sections 1 and 4 is produced (no runs of its own). */
export const cniSection = (cni: Cni, lab: Lab) =>
  [
    "## 7. The CNI bridge plugin as a third column (in sections 1 and 4)",
    "",
    cni.installed
      ? `${cni.version}, from ${CNI_PATH}. Driven as a container runtime drives it: per container \`ip netns add` +
        ` ${lab.name}-c<n>\`, then \`ip netns exec ${lab.name} ${CNI_PATH}/bridge\` with CNI_COMMAND=ADD, CNI_CONTAINERID,` +
        ` CNI_NETNS=/run/netns/${lab.name}-c<n>, CNI_IFNAME=eth0, CNI_PATH=${CNI_PATH} and the network configuration on stdin` +
        " (bridge br0, isGateway false, ipMasq false, IPAM host-local with a range of br0's subnet, the bridge as gateway," +
        " a default route, and a temporary dataDir per network); then DEL the same way, and `ip netns del`." +
        " In section 1 one run is that whole lifecycle with `ip netns exec <container> true` in the middle, the counterpart" +
        " of `netjail -- true`; in section 4 a batch is up when the last ADD has returned." +
        " host-local never looks at the segment: it hands out the next address its own records show free, which is" +
        " fast and right only as long as nobody else uses its range (section 1's second CNI row shows what happens" +
        " otherwise). It does not apply to sections 2, 3 and 5, which are about finding the free addresses of a shared segment."
      : `**Not available:** ${cni.reason}. The CNI rows of sections 1 and 4 are skipped.`
  ].join("\n")
