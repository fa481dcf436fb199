import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliProcess } from './helpers/onbus-cli.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-modules-'))
const procs: CliProcess[] = []
const pids: number[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true })
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('module processes', () => {
  it('a Node module stops by itself when the daemon is killed with SIGKILL (no orphan)', async () => {
    const file = join(dir, 'm.yaml')
    writeFileSync(file, `ipc: { enabled: false }\nmodules:\n  worker: { command: '\${node}', args: ['-e', 'console.log("pid " + process.pid); setInterval(() => {}, 1000)'] }\n`)
    const d = new CliProcess(['run', file, '--json'])
    procs.push(d)
    const line = await d.waitFor((r) => r.event === 'module-output' && /^pid \d+$/.test(String(r.line)))
    const pid = Number(String(line.line).split(' ')[1])
    pids.push(pid)
    expect(alive(pid)).toBe(true)
    d.kill('SIGKILL')
    await d.exited
    const deadline = Date.now() + 15_000
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(alive(pid)).toBe(false)
  }, 40_000)
})
