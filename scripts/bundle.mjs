// Bundles the CLI into one file: users pay start-up on every sandbox, and
// resolving hundreds of modules costs more than the sandbox setup itself.
import { build } from "esbuild"
import { chmodSync, readFileSync } from "node:fs"

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/netjail.mjs",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minify: true,
  sourcemap: "linked",
  // koffi is a native addon: it loads its prebuilt binary at run time
  external: ["koffi"],
  define: { NETJAIL_VERSION: JSON.stringify(version) },
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __netjailRequire } from 'node:module'; const require = __netjailRequire(import.meta.url);"
  },
  logLevel: "warning"
})
chmodSync("dist/netjail.mjs", 0o755)
