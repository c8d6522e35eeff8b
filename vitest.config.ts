import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The Linux tests share one kernel and /run; running their files in parallel
    // only adds noise, while the pure and simulated suites are fast either way.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
