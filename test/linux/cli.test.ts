/**
 * The real netjail executable (dist/netjail.mjs, built by `npm test`) against
 * the real kernel. Each test builds a lab namespace (njt-<random>) with a
 * bridge br0 10.10.20.1/24 and peer hosts, runs netjail inside it with
 * `ip netns exec`, and checks what the user sees (exit status, the table,
 * the JSON) against what the kernel holds (`ip -json` inside the sandbox and
 * in the lab). After every run, whatever its end, nothing may be left: no
 * veth in the lab, no new namespace, no process, and the host lock free.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { once } from "node:events"
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import { eventually, isRunning, namespaceHolders, SETTLE_MILLIS } from "./fixtures/processes.js"
import { describeKernel, type Lab, newLab } from "./lab.js"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const NETJAIL = fileURLToPath(new URL("../../dist/netjail.mjs", import.meta.url))
const NOISE = fileURLToPath(new URL("./fixtures/arpNoise.ts", import.meta.url))
const LOCK = "/run/netjail/netjail.lock"
/** Short ARP windows keep a run near 0.3 s: 2 probes of 100 ms. */
const FAST = "--arp-timeout=100"
/**
 * The command that tells us its pid and its network namespace, then stays:
 * sh execs sleep, so the pid is the command's.
 */
const PID_THEN_SLEEP = ["sh", "-c", "echo $$ $(readlink /proc/self/ns/net); exec sleep 100"]

beforeAll(() => {
  if (!existsSync(NETJAIL)) throw new Error(`${NETJAIL} is missing: run \`node scripts/bundle.mjs\` first (npm test does)`)
})

// ---- clean-up of everything a test starts, also when it fails ------------------------

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      cleanup()
    } catch {
      // already gone
    }
  }
})

const lab = (): Lab => {
  const l = newLab()
  cleanups.push(() => {
    runsIn.delete(l.name)
    l.delete()
  })
  return l
}

/** Kills a child we spawned, by its pid, if it has not ended (Node has not reaped it, so the pid is still ours). */
const killChild = (child: ChildProcess) => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
}

/** Kills a process a sandboxed command reported, by pid, only if it still runs the expected program. */
const killCommand = (pid: number, program: string) => {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? ""
    if (isRunning(pid) && argv0.endsWith(program)) process.kill(pid, "SIGKILL")
  } catch {
    // already gone
  }
}

// ---- running netjail --------------------------------------------------------------------

const delay = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))


const waitUntil = async (condition: () => boolean, millis: number, what: string): Promise<void> => {
  const deadline = Date.now() + millis
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${millis} ms waiting for ${what}`)
    await delay(10)
  }
}

interface Outcome {
  /** netjail's pid. */
  readonly pid: number
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

class Run {
  stdout = ""
  stderr = ""
  exited = false
  readonly done: Promise<Outcome>

  constructor(readonly child: ChildProcess) {
    cleanups.push(() => killChild(child))
    child.stdout!.setEncoding("utf8").on("data", (text: string) => (this.stdout += text))
    child.stderr!.setEncoding("utf8").on("data", (text: string) => (this.stderr += text))
    const drained = Promise.all([once(child.stdout!, "close"), once(child.stderr!, "close")]).catch(() => undefined)
    this.done = new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        this.exited = true
        // What was written just before the exit is still in the pipes; a command
        // that outlived netjail (the bug the SIGKILL test looks for) would hold them open.
        void Promise.race([drained, delay(1000)]).then(() =>
          resolve({ pid: child.pid!, code, signal, stdout: this.stdout, stderr: this.stderr })
        )
      })
    )
  }

  get pid(): number {
    return this.child.pid!
  }

  /** The first line the sandboxed command printed. */
  async firstLine(millis = 30_000): Promise<string> {
    await waitUntil(() => this.stdout.includes("\n") || this.exited, millis, "the command's first line")
    if (!this.stdout.includes("\n")) throw new Error(`netjail ended before the command wrote: ${this.stderr}`)
    return this.stdout.slice(0, this.stdout.indexOf("\n"))
  }

  /** Ends within `millis` or is killed and fails the test. */
  async finished(millis = 30_000): Promise<Outcome> {
    const timer = delay(millis).then(() => "timeout" as const)
    const result = await Promise.race([this.done, timer])
    if (result === "timeout") {
      killChild(this.child)
      throw new Error(`netjail did not end within ${millis} ms; stderr so far: ${this.stderr}`)
    }
    return result
  }
}

/** Every netjail started in a lab, by the lab's name, for the leftover checks. */
const runsIn = new Map<string, Array<Run>>()

/** netjail inside the lab namespace; `ip netns exec` execs node, so the child's pid is netjail's. */
const start = (l: Lab, args: ReadonlyArray<string>, stdin: "ignore" | "pipe" = "ignore"): Run => {
  const run = new Run(spawn("ip", ["netns", "exec", l.name, process.execPath, NETJAIL, ...args], {
    cwd: ROOT,
    stdio: [stdin, "pipe", "pipe"]
  }))
  runsIn.set(l.name, [...(runsIn.get(l.name) ?? []), run])
  return run
}

const netjail = (l: Lab, args: ReadonlyArray<string>) => start(l, args).finished()

// ---- what the user sees -------------------------------------------------------------------

/** A row of the interface table on stderr, split into its columns (Interface MAC IP Mask Status). */
const tableRow = (stderr: string, name: string): Array<string> | undefined =>
  stderr.split("\n").map((line) => line.trim().split(/\s+/)).find((cells) => cells[0] === name)

const jsonLine = (text: string): any => {
  const lines = text.trim().split("\n")
  expect(lines, text).toHaveLength(1)
  return JSON.parse(lines[0]!)
}

/** The command's stdout as one `ip -json` document per line. */
const jsonLines = (text: string): Array<any> => text.trim().split("\n").map((line) => JSON.parse(line))

const inetOf = (link: any): Array<{ local: string; prefixlen: number }> =>
  link.addr_info.filter((a: any) => a.family === "inet")

const octet = (address: string) => Number(address.split(".")[3])

/** PID_THEN_SLEEP's line: the pid and `net:[inode]`. */
const parsePidLine = (line: string): [number, string] => {
  const [pid, namespace] = line.split(" ")
  expect(namespace).toMatch(/^net:\[\d+\]$/)
  return [Number(pid), namespace!]
}

// ---- nothing left behind ----------------------------------------------------------------

const namespaceNames = (): Set<string> => {
  const text = execFileSync("ip", ["-json", "netns", "list"], { encoding: "utf8" }).trim()
  return new Set(text === "" ? [] : (JSON.parse(text) as Array<{ name: string }>).map((n) => n.name))
}

const lockFree = (): boolean => {
  if (!existsSync(LOCK)) return true
  try {
    execFileSync("flock", ["--nonblock", LOCK, "true"], { stdio: "pipe" })
    return true
  } catch {
    return false
  }
}


/**
 * Whether the process has an AF_PACKET socket open, which netjail has only
 * while it talks ARP: during setup, that is probing. By its fds and the
 * packet sockets of its namespace (/proc/<pid>/net/packet, Inode is column 9).
 */
const probing = (pid: number): boolean => {
  try {
    const [, ...rows] = readFileSync(`/proc/${pid}/net/packet`, "utf8").trim().split("\n")
    const sockets = new Set(rows.map((row) => `socket:[${row.trim().split(/\s+/)[8]}]`))
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return sockets.has(readlinkSync(`/proc/${pid}/fd/${fd}`))
      } catch {
        return false
      }
    })
  } catch {
    return false // gone
  }
}

const LEASES = "/run/netjail/leases"

/** Files of the lease registry (/run/netjail/leases/<segment>/<address>) that name this netjail as their owner. */
const leasesOf = (pid: number): Array<string> => {
  const owner = new RegExp(`"pid":\\s*${pid}\\b`)
  const found: Array<string> = []
  const walk = (path: string): void => {
    const stat = statSync(path, { throwIfNoEntry: false })
    if (stat?.isDirectory()) {
      for (const entry of readdirSync(path)) walk(join(path, entry))
    } else if (stat?.isFile()) {
      try {
        if (owner.test(readFileSync(path, "utf8"))) found.push(path)
      } catch {
        // removed meanwhile
      }
    }
  }
  walk(LEASES)
  return found
}

interface Baseline {
  readonly lab: Lab
  readonly links: Array<string>
  readonly namespaces: Set<string>
}

/** What the lab holds before netjail runs: taken after the topology is built. */
const baseline = (l: Lab): Baseline => ({ lab: l, links: l.linkNames(), namespaces: namespaceNames() })

/** Test labs and benches of this project (njt-*, njb-*) may come and go while we run; they are not netjail's. */
const othersNamespace = (name: string, l: Lab) => /^nj[a-z]-/.test(name) && !name.startsWith(l.name)

interface Leftovers {
  /** netjail runs that were SIGKILLed: their leases stay until the next start prunes them. */
  readonly crashed?: ReadonlyArray<number>
  /** The sandboxed command's pids. */
  readonly pids?: ReadonlyArray<number>
  /** The sandbox's namespace, `net:[inode]`, as the command read it. */
  readonly namespace?: string
  /** How long the kernel may take, when netjail itself could not clean up (SIGKILL). */
  readonly settle?: number
}

/**
 * Nothing left: the lab's links are back to the baseline, no named namespace
 * appeared, nothing holds the sandbox's namespace, the command's processes
 * are gone, netjail left no lease in the registry, and the lock is free.
 */
const expectNothingLeft = async (
  b: Baseline,
  { crashed = [], namespace, pids = [], settle = 0 }: Leftovers = {}
): Promise<void> => {
  await eventually(() => expect(b.lab.linkNames()).toEqual(b.links), settle)
  await eventually(() => {
    for (const pid of pids) expect(isRunning(pid), `command pid ${pid} still runs`).toBe(false)
  }, Math.max(settle, SETTLE_MILLIS))
  if (namespace !== undefined) await eventually(() => expect(namespaceHolders(namespace)).toEqual([]), Math.max(settle, SETTLE_MILLIS))
  const appeared = [...namespaceNames()].filter((n) => !b.namespaces.has(n) && !othersNamespace(n, b.lab))
  expect(appeared).toEqual([])
  for (const run of runsIn.get(b.lab.name) ?? []) {
    if (run.exited && !crashed.includes(run.pid)) expect(leasesOf(run.pid), `leases of netjail ${run.pid}`).toEqual([])
  }
  // another netjail on this host could hold it for a moment; ours must not hold it at all
  await eventually(() => expect(lockFree(), `${LOCK} is still locked`).toBe(true), SETTLE_MILLIS)
}

// ---- the labs -----------------------------------------------------------------------------

/** br0 10.10.20.1/24 with peers a .2 and b .3. */
const segment = () => {
  const l = lab()
  l.bridge("br0", "10.10.20.1/24")
  l.peer("br0", "a", "10.10.20.2/24")
  l.peer("br0", "b", "10.10.20.3/24")
  return l
}

describeKernel("netjail CLI on the kernel", () => {
  describe("addresses", () => {
    it("chooses a free address in the bridge's subnet, shows it, and routes through the bridge", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, [
        "--net=br0",
        FAST,
        "--",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ip -json addr show eth0; ip -json route show"
      ])
      expect(r.stderr).not.toContain("Error")
      expect(r.code).toBe(0)
      const [namespace, ...rest] = r.stdout.trim().split("\n")
      expect(namespace).toMatch(/^net:\[\d+\]$/)
      const [[eth0], routes] = jsonLines(rest.join("\n"))
      const [inet] = inetOf(eth0)
      expect(inetOf(eth0)).toHaveLength(1)
      expect(inet!.prefixlen).toBe(24)
      expect(inet!.local).toMatch(/^10\.10\.20\.\d+$/)
      expect([0, 1, 2, 3, 255]).not.toContain(octet(inet!.local))
      expect(eth0.operstate).toBe("UP")
      expect(tableRow(r.stderr, "eth0")).toEqual(["eth0", eth0.address, inet!.local, "255.255.255.0", "UP"])
      expect(tableRow(r.stderr, "lo")).toEqual(["lo", "127.0.0.1", "255.0.0.0", "UP"])
      expect(r.stderr).toContain("Default gateway 10.10.20.1\n")
      expect(routes).toContainEqual(expect.objectContaining({ dst: "default", gateway: "10.10.20.1", dev: "eth0" }))
      expect(routes).toContainEqual(expect.objectContaining({ dst: "10.10.20.0/24", dev: "eth0", prefsrc: inet!.local }))
      await expectNothingLeft(before, { namespace })
    })

    it("skips every address that answers ARP: in a range of four with three peers, takes the fourth", async () => {
      const l = segment()
      l.peer("br0", "c", "10.10.20.4/24")
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", "--iprange=10.10.20.2,10.10.20.5", FAST, "--", "ip", "-json", "addr", "show", "eth0"])
      expect(r.code).toBe(0)
      expect(inetOf(jsonLines(r.stdout)[0][0]).map((a) => a.local)).toEqual(["10.10.20.5"])
      expect(tableRow(r.stderr, "eth0")?.[2]).toBe("10.10.20.5")
      await expectNothingLeft(before)
    })

    it("takes a static --ip", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", "--ip=10.10.20.5", FAST, "--", "ip", "-json", "addr", "show", "eth0"])
      expect(r.code).toBe(0)
      expect(inetOf(jsonLines(r.stdout)[0][0])).toEqual([expect.objectContaining({ local: "10.10.20.5", prefixlen: 24 })])
      expect(tableRow(r.stderr, "eth0")?.slice(2)).toEqual(["10.10.20.5", "255.255.255.0", "UP"])
      await expectNothingLeft(before)
    })

    it("routes through --defaultgw", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", "--defaultgw=10.10.20.9", FAST, "--", "ip", "-json", "route", "show", "default"])
      expect(r.code).toBe(0)
      expect(jsonLines(r.stdout)[0]).toEqual([expect.objectContaining({ dst: "default", gateway: "10.10.20.9", dev: "eth0" })])
      expect(r.stderr).toContain("Default gateway 10.10.20.9\n")
      await expectNothingLeft(before)
    })
  })

  describe("refusals: exit 1, one message, nothing created", () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, string]> = [
      ["a peer's address", ["--net=br0", "--ip=10.10.20.2"], "IP address 10.10.20.2 is already in use"],
      ["an address outside the subnet", ["--net=br0", "--ip=10.10.50.5"], "the IP address is not in the interface range"],
      ["the network address", ["--net=br0", "--ip=10.10.20.0"], "the IP address is a network address"],
      ["the broadcast address", ["--net=br0", "--ip=10.10.20.255"], "the IP address is a network address"],
      ["the bridge's own address", ["--net=br0", "--ip=10.10.20.1"], "10.10.20.1 is interface br0 address"],
      ["the gateway's address", ["--net=br0", "--ip=10.10.20.9", "--defaultgw=10.10.20.9"], "10.10.20.9 is the default gateway"],
      [
        "a gateway outside every network",
        ["--net=br0", "--defaultgw=10.110.210.2"],
        "default gateway 10.110.210.2 is not in the range of any network"
      ],
      ["a missing device", ["--net=br9"], "cannot find network device br9"],
      ["a /31 bridge", ["--net=br31"], "the software is not supported for /31 networks"],
      ["a /32 bridge", ["--net=br32"], "the software is not supported for /31 networks"],
      ["an --iprange outside the subnet", ["--net=br0", "--iprange=10.10.30.5,10.10.30.9"], "IP range addresses not in network range"],
      [
        "an --iprange whose every address answers ARP",
        ["--net=br0", "--iprange=10.10.20.2,10.10.20.3"],
        "cannot assign an IP address; it looks like all of them are in use."
      ],
      ["a --veth-name that exists (a peer's port)", ["--net=br0", "--veth-name=pa"], "create veth pair pa on br0: EEXIST"]
    ]
    it.each(cases)("refuses %s", async (_, args, message) => {
      const l = segment()
      l.bridge("br31", "10.10.31.0/31", "02:00:00:00:00:31")
      l.bridge("br32", "10.10.32.1/32", "02:00:00:00:00:32")
      const before = baseline(l)
      const r = await netjail(l, [...args, FAST, "--", "echo", "ran"])
      expect(r.stderr.split("\n")).toEqual([expect.stringMatching(new RegExp(`^Error: ${message.replace(/\./g, "\\.")}`)), ""])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      await expectNothingLeft(before)
    })
  })

  describe("the sandbox's interfaces", () => {
    it("applies --mtu and --mac to eth0", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", "--mtu=1000", "--mac=00:11:22:33:44:55", FAST, "--", "ip", "-json", "link", "show", "eth0"])
      expect(r.code).toBe(0)
      expect(jsonLines(r.stdout)[0]).toEqual([
        expect.objectContaining({ ifname: "eth0", mtu: 1000, address: "00:11:22:33:44:55", operstate: "UP" })
      ])
      expect(tableRow(r.stderr, "eth0")?.[1]).toBe("00:11:22:33:44:55")
      await expectNothingLeft(before)
    })

    it("--ip=none: eth0 is up without IPv4, absent from the table, and there is no default route", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", "--ip=none", FAST, "--", "sh", "-c", "ip -json addr show eth0; ip -json route show default"])
      expect(r.code).toBe(0)
      const [[eth0], routes] = jsonLines(r.stdout)
      expect(eth0.flags).toContain("UP")
      expect(inetOf(eth0)).toEqual([])
      expect(routes).toEqual([])
      expect(tableRow(r.stderr, "eth0")).toBeUndefined()
      expect(tableRow(r.stderr, "lo")).toBeDefined()
      expect(r.stderr).not.toContain("Default gateway")
      await expectNothingLeft(before)
    })

    it("--net=none: only lo inside (/proc/net/dev has 3 lines)", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=none", "--", "sh", "-c", "cat /proc/net/dev | wc -l; ip -json link show"])
      expect(r.code).toBe(0)
      const [count, links] = r.stdout.trim().split("\n")
      expect(Number(count)).toBe(3)
      expect(JSON.parse(links!).map((link: any) => link.ifname)).toEqual(["lo"])
      await expectNothingLeft(before)
    })

    it("two --net at once: eth0 and eth1, each with an address in its bridge's subnet", async () => {
      const l = segment()
      l.bridge("br1", "10.10.30.1/24", "02:00:00:00:00:02")
      l.peer("br1", "x", "10.10.30.2/24")
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", "--net=br1", FAST, "--", "sh", "-c", "ip -json addr show; ip -json route show default"])
      expect(r.stderr).not.toContain("Error")
      expect(r.code).toBe(0)
      const [links, routes] = jsonLines(r.stdout)
      const address = (name: string) => inetOf(links.find((link: any) => link.ifname === name)).map((a) => a.local)
      const [eth0] = address("eth0")
      const [eth1] = address("eth1")
      expect(eth0).toMatch(/^10\.10\.20\.\d+$/)
      expect(eth1).toMatch(/^10\.10\.30\.\d+$/)
      expect([1, 2, 3]).not.toContain(octet(eth0!))
      expect([1, 2]).not.toContain(octet(eth1!))
      expect(tableRow(r.stderr, "eth0")?.[2]).toBe(eth0)
      expect(tableRow(r.stderr, "eth1")?.[2]).toBe(eth1)
      // only the first --net gives the gateway, as in firejail
      expect(routes).toEqual([expect.objectContaining({ gateway: "10.10.20.1", dev: "eth0" })])
      await expectNothingLeft(before)
    })
  })

  describe("a bridge without IPv4", () => {
    it("without --ip: warns and brings eth0 up without an address; with --ip and --netmask: configures it", async () => {
      const l = lab()
      l.bridge("brx", undefined, "02:00:00:00:00:09")
      const before = baseline(l)
      const bare = await netjail(l, ["--net=brx", FAST, "--", "ip", "-json", "addr", "show", "eth0"])
      expect(bare.code).toBe(0)
      expect(bare.stderr).toContain("Warning: Not enough information to configure an IP address")
      expect(inetOf(jsonLines(bare.stdout)[0][0])).toEqual([])
      expect(tableRow(bare.stderr, "eth0")).toBeUndefined()
      await expectNothingLeft(before)

      const configured = await netjail(l, [
        "--net=brx",
        "--ip=192.168.7.5",
        "--netmask=255.255.255.0",
        "--defaultgw=192.168.7.1",
        FAST,
        "--",
        "sh",
        "-c",
        "ip -json addr show eth0; ip -json route show default"
      ])
      expect(configured.code).toBe(0)
      const [[eth0], routes] = jsonLines(configured.stdout)
      expect(inetOf(eth0)).toEqual([expect.objectContaining({ local: "192.168.7.5", prefixlen: 24 })])
      expect(routes).toEqual([expect.objectContaining({ gateway: "192.168.7.1", dev: "eth0" })])
      expect(configured.stderr).toContain("Default gateway 192.168.7.1\n")
      await expectNothingLeft(before)
    })
  })

  describe("the command's exit status", () => {
    it.each([
      ["passes an exit status through", ["sh", "-c", "exit 7"], 7],
      ["reports a command killed by SIGKILL as 128+9", ["sh", "-c", "kill -KILL $$"], 137],
      ["reports a command killed by SIGTERM as 128+15", ["sh", "-c", "kill -TERM $$"], 143]
    ] as const)("%s", async (_, command, status) => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", FAST, "--quiet", "--", ...command])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(status)
      await expectNothingLeft(before)
    })

    it("ends what the command left running in the background, with the sandbox", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", FAST, "--quiet", "--", "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
      expect(r.code).toBe(0)
      const straggler = Number(r.stdout.trim())
      expect(Number.isInteger(straggler) && straggler > 0).toBe(true)
      await expectNothingLeft(before, { pids: [straggler] })
    })

    it("exits 127 with a message when the command does not exist", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--net=br0", FAST, "--quiet", "--", "njt-no-such-command", "x"])
      expect(r.stderr).toBe("Error: cannot run njt-no-such-command: command not found\n")
      expect(r.code).toBe(127)
      await expectNothingLeft(before)
    })

    it("exits 126 with a message when the command is not executable", async () => {
      const l = segment()
      const before = baseline(l)
      const file = join(mkdtempSync(join(tmpdir(), "njt-")), "not-executable")
      writeFileSync(file, "#!/bin/sh\necho ran\n", { mode: 0o644 })
      cleanups.push(() => rmSync(dirname(file), { recursive: true, force: true }))
      const directory = dirname(file)
      for (const [command, reason] of [[file, `${file}: permission denied`], [directory, `${directory} is a directory`]]) {
        const r = await netjail(l, ["--net=br0", FAST, "--quiet", "--", command!])
        expect(r.stderr).toBe(`Error: cannot run ${command}: ${reason}\n`)
        expect(r.code).toBe(126)
        expect(r.stdout).toBe("")
        await expectNothingLeft(before)
      }
    })
  })

  describe("signals", () => {
    it.each([["SIGTERM", 143], ["SIGHUP", 129]] as const)(
      "%s while the command runs: forwarded, the command dies of it, netjail exits %i",
      async (signal, status) => {
        const l = segment()
        const before = baseline(l)
        const run = start(l, ["--net=br0", FAST, "--", ...PID_THEN_SLEEP])
        const [pid, namespace] = parsePidLine(await run.firstLine())
        cleanups.push(() => killCommand(pid, "sleep"))
        expect(isRunning(pid)).toBe(true)
        expect(namespaceHolders(namespace)).toContain(`process ${pid}`)
        // the sandbox is live: its veth is a port of br0 in the lab
        expect(l.linkNames().length).toBe(before.links.length + 1)
        process.kill(run.pid, signal)
        const r = await run.finished()
        expect(r.code).toBe(status)
        expect(isRunning(pid)).toBe(false)
        await expectNothingLeft(before, { pids: [pid], namespace })
      }
    )

    it("SIGTERM while the command runs: a command that handles it decides the exit status", async () => {
      const l = segment()
      const before = baseline(l)
      // sh waits for sleep in the foreground and runs the trap once sleep has died of the forwarded signal
      const run = start(l, ["--net=br0", FAST, "--", "sh", "-c", "trap 'exit 3' TERM; echo $$; sleep 0.5; sleep 0.5"])
      const pid = Number(await run.firstLine())
      process.kill(run.pid, "SIGTERM")
      const r = await run.finished()
      expect(r.code).toBe(3)
      await expectNothingLeft(before, { pids: [pid] })
    })

    it("SIGKILL while the command runs: the command dies with netjail (parent-death signal)", async () => {
      const l = segment()
      const before = baseline(l)
      const run = start(l, ["--net=br0", FAST, "--", ...PID_THEN_SLEEP])
      const [pid, namespace] = parsePidLine(await run.firstLine())
      cleanups.push(() => killCommand(pid, "sleep"))
      expect(isRunning(pid)).toBe(true)
      process.kill(run.pid, "SIGKILL")
      const r = await run.finished()
      expect(r.signal).toBe("SIGKILL")
      // netjail could not clean up: the kernel reclaims the veth with the namespace, asynchronously
      await expectNothingLeft(before, { pids: [pid], namespace, settle: 3000, crashed: [run.pid] })
      // and the next start removes the dead one's lease, if it left one
      expect((await netjail(l, ["--net=br0", FAST, "--quiet", "--", "true"])).code).toBe(0)
      expect(leasesOf(run.pid)).toEqual([])
      await expectNothingLeft(before)
    })

    it.each([["SIGINT", 130], ["SIGTERM", 143]] as const)(
      "%s during setup (while probing): stops at once, exits %i, never starts the command",
      async (signal, status) => {
        const l = segment()
        const before = baseline(l)
        // 2 probes of 3 s: the first batch alone would take 6 s
        const run = start(l, ["--net=br0", "--arp-timeout=3000", "--", ...PID_THEN_SLEEP])
        await waitUntil(() => probing(run.pid) || run.exited, 30_000, "netjail to probe")
        await delay(300)
        const sent = Date.now()
        process.kill(run.pid, signal)
        const r = await run.finished()
        expect(r.code).toBe(status)
        // it did not wait out the probe windows (6 s): the signal ended the setup
        expect(Date.now() - sent).toBeLessThan(6000)
        expect(r.stdout).toBe("")
        await expectNothingLeft(before)
      }
    )
  })

  describe("many sandboxes", () => {
    it("a running sandbox's address and --veth-name are taken: a second start is refused and the first untouched", async () => {
      const l = segment()
      const before = baseline(l)
      const first = start(l, ["--net=br0", "--ip=10.10.20.5", "--veth-name=njv0", "--json", FAST, "--", "cat"], "pipe")
      await waitUntil(() => first.stderr.endsWith("\n") || first.exited, 30_000, "the first sandbox")
      expect(jsonLine(first.stderr).interfaces[0]).toMatchObject({ hostName: "njv0", address: "10.10.20.5/24" })
      expect(l.json("link", "show", "njv0")[0].master).toBe("br0")

      const sameAddress = await netjail(l, ["--net=br0", "--ip=10.10.20.5", FAST, "--", "echo", "ran"])
      expect(sameAddress.stderr).toBe("Error: IP address 10.10.20.5 is already in use\n")
      expect(sameAddress.code).toBe(1)
      const sameName = await netjail(l, ["--net=br0", "--veth-name=njv0", FAST, "--", "echo", "ran"])
      expect(sameName.stderr).toMatch(/^Error: create veth pair njv0 on br0: EEXIST/)
      expect(sameName.code).toBe(1)
      // the refused starts removed nothing of the first one's
      expect(l.json("link", "show", "njv0")[0].master).toBe("br0")
      expect(first.exited).toBe(false)

      first.child.stdin!.end()
      expect((await first.finished()).code).toBe(0)
      await expectNothingLeft(before)
    })

    it("10 concurrent starts on one bridge get 10 distinct free addresses", async () => {
      const l = segment()
      const before = baseline(l)
      // `cat` holds each sandbox open until its stdin ends, so all ten coexist
      const runs = Array.from({ length: 10 }, () => start(l, ["--net=br0", "--json", FAST, "--", "cat"], "pipe"))
      await waitUntil(() => runs.every((r) => r.stderr.endsWith("\n") || r.exited), 30_000, "ten summaries")
      const summaries = runs.map((r) => jsonLine(r.stderr))
      const addresses = summaries.map((s) => s.interfaces[0].address as string)
      expect(new Set(addresses).size).toBe(10)
      for (const address of addresses) {
        expect(address).toMatch(/^10\.10\.20\.\d+\/24$/)
        expect([0, 1, 2, 3, 255]).not.toContain(octet(address.split("/")[0]!))
      }
      // all ten are live at once: ten host ends on br0
      const ports = l.json<Array<{ ifname: string }>>("link", "show", "master", "br0").map((p) => p.ifname)
      for (const s of summaries) expect(ports).toContain(s.interfaces[0].hostName)
      for (const r of runs) r.child.stdin!.end()
      const outcomes = await Promise.all(runs.map((r) => r.finished()))
      expect(outcomes.map((o) => o.code)).toEqual(Array(10).fill(0))
      await expectNothingLeft(before)
    })

    it("a crowded, noisy segment: every chosen address is one of the few free ones", async () => {
      const l = lab()
      l.bridge("br0", "10.10.20.1/24")
      const FREE = [23, 77, 131, 178, 202, 249]
      const taken = Array.from({ length: 251 }, (_, i) => i + 3).filter((o) => !FREE.includes(o))
      // one host holding the rest of the /24 but .254 on one interface: its kernel answers ARP for all of them
      l.peer("br0", "c", "10.10.20.2/24")
      execFileSync("ip", ["-n", `${l.name}-c`, "-batch", "-"], {
        input: taken.map((o) => `addr add 10.10.20.${o}/24 dev eth0`).join("\n") + "\n",
        stdio: ["pipe", "pipe", "pipe"]
      })
      // and a noisy one at .254, about 400 broadcast ARP frames a second, none claiming a free address
      l.peer("br0", "n", "10.10.20.254/24")
      const noise = spawn(
        "ip",
        ["netns", "exec", `${l.name}-n`, process.execPath, "--import", "tsx", NOISE, "eth0", "10.10.20.254", [2, ...taken, 254].join(","), "400"],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] }
      )
      cleanups.push(() => killChild(noise))
      const noiseRun = { out: "" }
      noise.stdout.setEncoding("utf8").on("data", (text: string) => (noiseRun.out += text))
      await waitUntil(() => noiseRun.out.includes("ready") || noise.exitCode !== null, 15_000, "the noise generator")
      expect(noise.exitCode).toBeNull()
      const received = () => l.json<Array<any>>("-s", "link", "show", "pn")[0].stats64.rx.packets as number
      const before = baseline(l)
      const startedAt = Date.now()
      const framesAtStart = received()

      const chosen: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const r = await netjail(l, ["--net=br0", "--json", "--arp-timeout=200", "--", "true"])
        expect(r.stderr).not.toContain("Error")
        expect(r.code).toBe(0)
        chosen.push(jsonLine(r.stderr).interfaces[0].address)
        await expectNothingLeft(before)
      }
      const seconds = (Date.now() - startedAt) / 1000
      for (const address of chosen) expect(FREE.map((o) => `10.10.20.${o}/24`)).toContain(address)
      // the noise really ran throughout (frames the lab received from it)
      expect(received() - framesAtStart).toBeGreaterThan(200 * seconds)
      expect(noise.exitCode).toBeNull()
    })
  })

  describe("reporting", () => {
    it("--dry-run prints the plan and creates nothing", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--dry-run", "--net=br0", FAST, "--", "echo", "ran"])
      expect(r.code).toBe(0)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/^Dry run: nothing was created\.\n/)
      expect(r.stderr).toMatch(/^ {2}eth0: veth on br0, address 10\.10\.20\.\d+\/24, mtu 1500$/m)
      expect(r.stderr).toContain("  default gateway: 10.10.20.1\n")
      expect(l.linkNames()).toEqual(before.links)
      await expectNothingLeft(before)

      const json = await netjail(l, ["--dry-run", "--json", "--net=br0", FAST])
      expect(json.code).toBe(0)
      expect(jsonLine(json.stderr)).toMatchObject({
        dryRun: true,
        gateway: "10.10.20.1",
        interfaces: [{ name: "eth0", device: "br0", wiring: "veth", address: expect.stringMatching(/^10\.10\.20\.\d+\/24$/) }]
      })
      await expectNothingLeft(before)
    })

    it("--json prints one JSON object on stderr that matches the kernel", async () => {
      const l = segment()
      const before = baseline(l)
      const run = start(l, ["--net=br0", "--json", FAST, "--", "cat"], "pipe")
      await waitUntil(() => run.stderr.endsWith("\n") || run.exited, 30_000, "the summary")
      const summary = jsonLine(run.stderr)
      expect(summary).toMatchObject({
        interfaces: [{
          name: "eth0",
          device: "br0",
          wiring: "veth",
          hostName: expect.stringMatching(/^.{1,15}$/),
          address: expect.stringMatching(/^10\.10\.20\.\d+\/24$/),
          mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
          mtu: 1500
        }],
        gateway: "10.10.20.1",
        warnings: [],
        command: ["cat"],
        readyMillis: expect.any(Number)
      })
      // milliseconds per setup phase
      expect(Object.values(summary.timings).length).toBeGreaterThan(0)
      for (const millis of Object.values(summary.timings)) expect(millis).toBeGreaterThanOrEqual(0)
      // the host end is a port of br0 while the sandbox runs
      const [host] = l.json("link", "show", summary.interfaces[0].hostName)
      expect(host.master).toBe("br0")
      run.child.stdin!.end()
      expect((await run.finished()).code).toBe(0)
      await expectNothingLeft(before)
    })

    it("--quiet prints nothing on stderr", async () => {
      const l = segment()
      const before = baseline(l)
      const r = await netjail(l, ["--quiet", "--net=br0", FAST, "--", "echo", "ran"])
      expect(r.code).toBe(0)
      expect(r.stderr).toBe("")
      expect(r.stdout).toBe("ran\n")
      await expectNothingLeft(before)
    })
  })
})

// ---- no kernel needed -------------------------------------------------------------------------

/**
 * In an empty network namespace of its own when we are root, so a regression
 * that let one of these through could never touch the host's network. (Not as
 * another user: the checkout may sit in a directory only root can enter.)
 */
const unprivileged = (args: ReadonlyArray<string>) => {
  const isolate = process.getuid?.() === 0 && existsSync("/usr/bin/unshare")
  return new Run(spawn(
    isolate ? "/usr/bin/unshare" : process.execPath,
    isolate ? ["--net", "--", process.execPath, NETJAIL, ...args] : [NETJAIL, ...args],
    { cwd: "/", stdio: ["ignore", "pipe", "pipe"] }
  )).finished()
}

// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "")

describe("netjail CLI: refusals before anything is touched (firejail issue 2 style)", () => {
  it.each([
    [["--net=lo"], "Error: cannot attach to lo device"],
    [["--mtu=10"], "Error: no network device configured"],
    [["--net=br0", "--mtu=10"], "Error: invalid mtu value"],
    [["--net=br0", "--mac=01:00:5e:00:00:01"], "Error: invalid MAC address (multicast)"]
  ] as const)("%j", async (args, message) => {
    const r = await unprivileged([...args, "--", "echo", "ran"])
    expect(r.stderr.startsWith(message), r.stderr).toBe(true)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
  })

  it("--help exits 0 and lists every option", async () => {
    const r = await unprivileged(["--help"])
    expect(r.code).toBe(0)
    const help = plain(r.stdout + r.stderr)
    for (
      const option of [
        "--net",
        "--ip",
        "--iprange",
        "--netmask",
        "--mac",
        "--mtu",
        "--veth-name",
        "--ipvlan",
        "--defaultgw",
        "--quiet",
        "--json",
        "--dry-run",
        "--arp-probes",
        "--arp-timeout",
        "--lock-timeout"
      ]
    ) expect(help, option).toMatch(new RegExp(`${option}(?![\\w-])`))
  })

  it("--version prints the version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
    const r = await unprivileged(["--version"])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe(version)
  })
})
