import { execFileSync, spawnSync } from "node:child_process"
const cmds = { "node -e 0": ["-e", "0"], "dist esm": ["dist/netjail.mjs", "--version"], "dist --net=none": ["dist/netjail.mjs", "--net=none", "--quiet", "--", "true"], "cjs plain": ["bench/scratch/cjs.cjs", "--version"], "cjs+cache": ["bench/scratch/cached.cjs", "--version"], "esm no yaml/toml/ini": ["bench/scratch/nostub.mjs", "--version"], "import koffi": ["--input-type=module", "-e", "import 'koffi'"] }
const r = {}
for (let i = 0; i < 21; i++) for (const [k, a] of Object.entries(cmds)) { const s = performance.now(); spawnSync(process.execPath, a); (r[k] ??= []).push(performance.now() - s) }
for (const [k, v] of Object.entries(r)) { v.sort((a, b) => a - b); console.log(k.padEnd(24), "median", v[10].toFixed(0), "min", v[0].toFixed(0), "p25", v[5].toFixed(0)) }
