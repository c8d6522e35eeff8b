import { build } from "esbuild"
import { writeFileSync } from "node:fs"
const common = { entryPoints: ["src/cli/main.ts"], bundle: true, platform: "node", target: "node20", minify: true, external: ["koffi"], logLevel: "warning", define: { NETJAIL_VERSION: '"0.1.0"' } }
// A: CJS bundle loaded through vm.Script with a V8 code cache
await build({ ...common, format: "cjs", outfile: "bench/scratch/cjs.cjs" })
writeFileSync("bench/scratch/cached.cjs", `
const fs = require("node:fs"), vm = require("node:vm"), path = require("node:path"), Module = require("node:module")
const file = path.join(__dirname, "cjs.cjs"), cacheFile = file + ".v8cache"
const source = fs.readFileSync(file, "utf8")
let cachedData; try { cachedData = fs.readFileSync(cacheFile) } catch {}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData })
const fn = script.runInThisContext()
const m = { exports: {} }
fn.call(m.exports, m.exports, Module.createRequire(file), m, file, __dirname)
if (cachedData === undefined || script.cachedDataRejected) setImmediate(() => fs.writeFileSync(cacheFile, script.createCachedData()))
`)
// B: ESM without yaml/toml/ini (stubbed)
await build({ ...common, format: "esm", outfile: "bench/scratch/nostub.mjs", banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
  plugins: [{ name: "stub", setup(b) { b.onResolve({ filter: /^(yaml|toml|ini)$/ }, (a) => ({ path: a.path, namespace: "stub" })); b.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: "export default {}; export const parse = () => { throw new Error('stub') }", loader: "js" })) } }] })
