import { describe, it, expect, afterAll } from 'vitest'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/onbus-cli.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-cli-bench-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('onbus bench', () => {
  it('runs dist/bench/run.js with the arguments passed through (an empty selection: no load on the machine)', async () => {
    const out = join(dir, 'r.json')
    const r = await runCli(['bench', '--quick', '--only', 'nothing', '--no-wait', '--out', out], {}, 60_000)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout + r.stderr).toMatch(/onbus bench: 1 × 0\.5 s per case/) // --quick reached the runner
    expect(existsSync(out)).toBe(true) // so did --out
    expect(existsSync(join(dir, 'r.md'))).toBe(true)
  }, 90_000)
})
