import { build } from "esbuild"
await build({ entryPoints: ["src/cli/main.ts"], outfile: "bench/scratch/semi.mjs", bundle: true, platform: "node", target: "node20", format: "esm", minifyIdentifiers: true, minifySyntax: true, external: ["koffi"], logLevel: "warning", banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" } })
