import { defineConfig } from 'vitest/config'

// Native code must not share a thread pool: every test file runs in its own
// forked process.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
})
