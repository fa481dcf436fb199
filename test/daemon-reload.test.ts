import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createUdpLink } from '../lib/index.js'
import { CliProcess, freeUdpPort, runCli } from './helpers/onbus-cli.js'
import type { StatsSnapshot } from '../lib/daemon/stats.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-daemon-'))
const ipcDir = join(dir, 'ipc')
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

function bindable(port: number): boolean {
  try {
    createUdpLink({ port }).close()
    return true
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') return false
    throw err
  }
}

async function snapshot(pred: (s: StatsSnapshot) => boolean, timeoutMs = 15_000): Promise<StatsSnapshot> {
  const deadline = Date.now() + timeoutMs
  let last: StatsSnapshot | undefined
  while (Date.now() < deadline) {
    const r = await runCli(['stats', '--json', '-n', '1', '--ipc-dir', ipcDir])
    expect(r.code, r.stderr).toBe(0)
    last = r.json[0] as unknown as StatsSnapshot
    if (pred(last)) return last
    await new Promise((res) => setTimeout(res, 500))
  }
  throw new Error(`stats never matched; last: ${JSON.stringify(last)}`)
}

describe('onbus run: reload and stop', () => {
  it('SIGHUP changes only what changed; a bad file is refused and the old configuration keeps running; SIGTERM exits 0', async () => {
    const [p1, p2, p3] = [freeUdpPort(), freeUdpPort(), freeUdpPort()]
    const file = join(dir, 'vehicle.yaml')
    const topics = (links: string[]) =>
      `topics:\n${links.map((l) => `  ${l}/in:\n    codec: raw\n    qos: { profile: sensorData, depth: 256 }\n    from: [${l}]\n`).join('')}`
    writeFileSync(
      file,
      `version: 1\nstats: { intervalMs: 500 }\nlinks:\n  steady: { kind: udp, port: ${p1} }\n  changing: { kind: udp, port: ${p2}, rcvBuf: 262144 }\n  going: { kind: udp, port: ${p3} }\n` +
        topics(['steady', 'changing', 'going']),
    )
    const d = new CliProcess(['run', file, '--json', '--ipc-dir', ipcDir])
    procs.push(d)
    await d.waitFor((r) => r.event === 'ready')
    expect(bindable(p1) || bindable(p2) || bindable(p3)).toBe(false)

    // Traffic into the untouched link across the reload: every datagram must arrive.
    const tx = createUdpLink({ port: 0, receive: false })
    let sent = 0
    const timer = setInterval(() => {
      for (let i = 0; i < 4; i++) tx.send(Buffer.from(`n${sent++}`), p1, '127.0.0.1')
    }, 5)
    await new Promise((r) => setTimeout(r, 300))

    const mark = d.records.length
    writeFileSync(
      file,
      `version: 1\nstats: { intervalMs: 500 }\nlinks:\n  steady: { kind: udp, port: ${p1} }\n  changing: { kind: udp, port: ${p2}, rcvBuf: 524288 }\n  added: { kind: tcp-server, port: 0 }\n` +
        topics(['steady', 'changing', 'added']),
    )
    d.kill('SIGHUP')
    const reload = await d.waitFor((r) => r.event === 'reload', 20_000, mark)
    expect(reload.links).toEqual({ added: ['added'], removed: ['going'], changed: ['changing'], kept: ['steady'] })
    expect(reload.topics).toEqual({ added: ['added/in'], removed: ['going/in'], changed: [], kept: ['steady/in', 'changing/in'] })
    const events = d.records.slice(mark)
    expect(events.filter((r) => r.link === 'steady')).toEqual([]) // never closed, never reopened
    expect(events.filter((r) => r.event === 'link-close').map((r) => r.link).sort()).toEqual(['changing', 'going'])
    expect(events.filter((r) => r.event === 'link-open').map((r) => r.link).sort()).toEqual(['added', 'changing'])
    expect(bindable(p3)).toBe(true) // removed: its port is free
    expect(bindable(p2)).toBe(false) // changed: open again on the same port

    await new Promise((r) => setTimeout(r, 300))
    clearInterval(timer)
    tx.close()
    const s = await snapshot((x) => x.links.find((l) => l.name === 'steady')?.rxMessages === sent)
    expect(s.links.map((l) => l.name).sort()).toEqual(['added', 'changing', 'steady'])
    expect(s.topics.find((t) => t.name === 'steady/in')!.published).toBe(sent)
    expect(sent).toBeGreaterThan(100)

    // A bad file: reported with its line, nothing changes.
    const mark2 = d.records.length
    writeFileSync(file, `version: 1\nlinks:\n  steady: { kind: udp, port: ${p1} }\n  broken: { kind: udp, port: "x" }\n`)
    d.kill('SIGHUP')
    const refused = await d.waitFor((r) => r.event === 'reload-refused', 20_000, mark2)
    expect(String(refused.error)).toMatch(/vehicle\.yaml:4:\d+: links\.broken\.port: must be of type integer/)
    const after = await snapshot((x) => x.daemon.reloads === 1)
    expect(after.links.map((l) => l.name).sort()).toEqual(['added', 'changing', 'steady'])

    d.kill('SIGTERM')
    const end = await d.exited
    expect(end, d.stderr).toEqual({ code: 0, signal: null })
    expect(d.records.at(-1)?.event).toBe('closed')
    expect(d.stderr).not.toMatch(/open handles/)
    expect(bindable(p1) && bindable(p2)).toBe(true)
  }, 90_000)
})
