import { defineConfig } from "vitest/config"

export default defineConfig({
  // tests import "netjail" and "netjail/testing" exactly as users do, from the sources
  resolve: {
    alias: {
      "netjail/testing": new URL("./src/testing.ts", import.meta.url).pathname,
      "netjail": new URL("./src/index.ts", import.meta.url).pathname
    }
  },
  test: {
    include: ["test/**/*.test.ts"],
    // The Linux tests share one kernel and /run; running their files in parallel
    // only adds noise, while the pure and simulated suites are fast either way.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
