// Vitest configuration of the sanitizer run (scripts/test-asan.sh): the
// project's own configuration, with the test workers started by an
// ASan-enabled copy of node (the script adds libasan as node's first DT_NEEDED
// entry; Node itself is not instrumented, and the ASan runtime must be loaded
// before anything else). Vitest forks its workers with process.execPath, so
// pointing that at the copy here, in the main process, makes every worker, and
// every fixture a test spawns with process.execPath, run with the sanitizer,
// while the vitest main process and system tools (ip, tc, unshare, sh) run
// without it: their exit is not ours to judge.
import { fileURLToPath } from 'node:url'
import { defineConfig, mergeConfig } from 'vitest/config'
import base from '../../vitest.config.js'

const asanNode = process.env.ONBUS_ASAN_NODE
if (!asanNode) throw new Error('ONBUS_ASAN_NODE is not set: run this through scripts/test-asan.sh')
process.execPath = asanNode

export default mergeConfig(
  base,
  defineConfig({
    root: fileURLToPath(new URL('../..', import.meta.url)),
    test: {
      // Instrumented code runs a few times slower.
      testTimeout: 120_000,
      hookTimeout: 120_000,
    },
  }),
)
