// Bundles the CLI into one file and a V8 code cache for it: users pay
// start-up on every sandbox, and compiling an 800 KB bundle from scratch
// costs more than the sandbox setup itself (measured in bench/RESULTS.md).
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs"

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/netjail.cjs",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: true,
  // koffi is a native addon: it loads its prebuilt binary at run time
  external: ["koffi"],
  define: { NETJAIL_VERSION: JSON.stringify(version) },
  logLevel: "warning"
})

// The entry: loads the bundle through vm.Script with the code cache. A cache
// from another V8 (Node upgraded) is rejected by V8 itself and only costs the
// plain compile; it holds nothing but compiled code of the bundle beside it.
writeFileSync("dist/netjail.mjs", `#!/usr/bin/env node
import { readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import vm from "node:vm"

const file = fileURLToPath(new URL("./netjail.cjs", import.meta.url))
const cacheFile = file + ".cache"
let cachedData
try { cachedData = readFileSync(cacheFile) } catch {}
const script = new vm.Script(
  "(function (exports, require, module, __filename, __dirname) {" + readFileSync(file, "utf8") + "\\n})",
  { filename: file, cachedData }
)
if (process.env.NETJAIL_WRITE_CODE_CACHE) {
  process.once("exit", () => writeFileSync(cacheFile, script.createCachedData()))
}
const module = { exports: {} }
script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file))
`)
chmodSync("dist/netjail.mjs", 0o755)

rmSync("dist/netjail.mjs.map", { force: true })

// Warm the cache with a run that loads every module (--help renders the whole command tree).
rmSync("dist/netjail.cjs.cache", { force: true })
execFileSync(process.execPath, ["dist/netjail.mjs", "--help"], {
  env: { ...process.env, NETJAIL_WRITE_CODE_CACHE: "1" },
  stdio: "ignore"
})
