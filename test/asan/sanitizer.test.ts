/**
 * Guards the sanitizer run itself: when scripts/test-asan.sh runs the suite
 * (ONBUS_EXPECT_SANITIZE=1), the test workers and the processes they spawn
 * must really load the instrumented addon with the ASan runtime, or the run
 * would pass without checking anything. Skipped (with a reason) otherwise.
 */
import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { native } from '../../lib/index.js'

const expectSanitize = process.env.ONBUS_EXPECT_SANITIZE === '1'
if (!expectSanitize) console.warn('skipping sanitizer self-checks: not a sanitizer run (use npm run test:asan)')

describe.skipIf(!expectSanitize)('sanitizer run', () => {
  it('this test worker runs the ASan-enabled node and loaded the ASan+UBSan build of the addon', () => {
    expect(process.execPath).toBe(process.env.ONBUS_ASAN_NODE)
    expect(native.features().sanitize).toBe(true)
    expect(readFileSync('/proc/self/maps', 'utf8')).toMatch(/libasan\.so/)
  })

  it('a child process spawned by a test inherits it (fixtures run instrumented too)', () => {
    const dist = new URL('../../dist/lib/index.js', import.meta.url).href
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(dist)}); console.log(JSON.stringify({ sanitize: m.native.features().sanitize, asan: (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8').includes('libasan') }))`],
      { encoding: 'utf8' },
    )
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ sanitize: true, asan: true })
  })

  it('system tools the tests run (sh, ip, unshare) stay uninstrumented', () => {
    const r = spawnSync('sh', ['-c', 'cat /proc/$$/maps'], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).not.toMatch(/libasan/)
    expect(process.env.LD_PRELOAD ?? '').not.toMatch(/asan/)
  })
})
