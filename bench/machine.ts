/** What the numbers were measured on, and which tools are there to compare against. */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { cpus, loadavg, release, machine as architecture } from "node:os"
import { join } from "node:path"
import type { Cni } from "./cni.js"

export const FIREJAIL_INSTALL = "apt-get update && apt-get install -y firejail"

export type Firejail =
  | { readonly installed: true; readonly version: string }
  | { readonly installed: false; readonly reason: string }

export const detectFirejail = (): Firejail => {
  try {
    const out = execFileSync("firejail", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
    return { installed: true, version: out.split("\n")[0]?.replace(/^firejail version\s*/, "").trim() || "unknown" }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return {
      installed: false,
      reason: code === "ENOENT"
        ? `firejail is not installed; install Debian's package with \`${FIREJAIL_INSTALL}\``
        : `\`firejail --version\` failed: ${String(error).split("\n")[0]}`
    }
  }
}

const cpuModel = (): string => cpus()[0]?.model.trim() ?? "unknown"

const newestFile = (dir: string): number => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestFile(path) : statSync(path).mtimeMs)
  }
  return newest
}

/** Undefined when dist/netjail.mjs is at least as new as every file under src/, else a warning. */
export const staleBundle = (root: string): string | undefined => {
  const bundle = statSync(join(root, "dist/netjail.mjs"), { throwIfNoEntry: false })
  if (bundle === undefined) return "dist/netjail.mjs is missing: run `node scripts/bundle.mjs` (or `npm run build`) first"
  return newestFile(join(root, "src")) > bundle.mtimeMs
    ? "dist/netjail.mjs is older than src/: the CLI rows measure the last bundle (run `node scripts/bundle.mjs`)"
    : undefined
}

export const netjailVersion = (root: string): string =>
  (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version

export const loadAverage = (): string => loadavg().map((l) => l.toFixed(2)).join(" ")

const memoryTotal = (): string => {
  try {
    const kib = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1])
    return `${(kib / 1024 / 1024).toFixed(1)} GiB`
  } catch {
    return "unknown"
  }
}

const osName = (): string => {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "unknown"
  } catch {
    return "unknown"
  }
}

export const describeMachine = (root: string, firejail: Firejail, cni: Cni): Array<[string, string]> => [
  ["kernel (uname -r)", `${release()} (${architecture()})`],
  ["OS", osName()],
  ["CPUs (nproc)", `${cpus().length} × ${cpuModel()}`],
  ["memory", memoryTotal()],
  ["node", process.version],
  ["firejail", firejail.installed ? firejail.version : `not available: ${firejail.reason}`],
  ["CNI plugins", cni.installed ? cni.version : `not available: ${cni.reason}`],
  ["netjail", `${netjailVersion(root)} (dist/netjail.mjs)`],
  ["load average at start", loadAverage()]
]
