// The examples a newcomer runs from the README must keep working.
import { describe, it, expect } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { skipUnderEmulator } from './helpers/emulator.js'

const dist = (p: string) => fileURLToPath(new URL(`../dist/examples/${p}`, import.meta.url))
const built = existsSync(dist('udp-live.js'))
if (!built) console.warn('skipping example runs: dist/ is not built (npm test builds it first)')

describe.skipIf(!built || skipUnderEmulator('speed'))('examples', () => {
  it('npm start (udp-live): the receiver reports the simulated LiDAR rate with no drops', () => {
    const r = spawnSync(process.execPath, [dist('udp-live.js'), '--seconds', '3', '--rate', '5000'], { encoding: 'utf8', timeout: 20_000 })
    expect(r.status, r.stderr).toBe(0)
    const rows = r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c.length === 6 && /^\d+$/.test(c[0]))
    expect(rows.length).toBe(3)
    // After the first (partial) second the rate is the sensor's, and nothing is lost.
    const last = rows[rows.length - 1]
    expect(Number(last[0])).toBeGreaterThan(4000)
    expect(last.slice(3)).toEqual(['0', '0', '0'])
  })

  it('perception → planning in two processes: planning receives ~10 frames/s and decides', () => {
    const r = spawnSync(process.execPath, [dist('perception-planning/run.js'), '--seconds', '4', '--lidar-port', '0'], { encoding: 'utf8', timeout: 30_000 })
    expect(r.stderr).not.toMatch(/Error/)
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('planning:') && l.includes('frames/s'))
    expect(lines.length).toBeGreaterThanOrEqual(2)
    const frames = lines.map((l) => Number(/(\d+) frames\/s/.exec(l)![1]))
    expect(Math.max(...frames)).toBeGreaterThanOrEqual(5)
    expect(lines.some((l) => /decision: (CRUISE|SLOW)/.test(l))).toBe(true)
  })
})
