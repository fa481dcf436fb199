/**
 * The "done means" for record and replay: `onbus run` (the simulated
 * vehicle), `onbus record` for a few seconds in another process, then
 * `onbus replay` of that file onto UDP. Checks: no drops, the LiDAR packets
 * logged at their kernel receive time, the topic types from the daemon in the
 * channel metadata, and every recorded packet replayed.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { McapIndexedReader } from '@mcap/core'
import { createUdpLink } from '../lib/index.js'
import { decompressHandlers, FileReadable } from '../lib/record/io.js'
import { CliProcess, runCli } from './helpers/onbus-cli.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const dir = mkdtempSync(join(tmpdir(), 'onbus-rec-vehicle-'))
const ipcDir = join(dir, 'ipc')
const procs: CliProcess[] = []
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

function freePair(): number {
  for (;;) {
    const a = createUdpLink({ port: 0, receive: false })
    const p = a.address().port
    try {
      if (p < 65535) {
        createUdpLink({ port: p + 1, receive: false }).close()
        return p
      }
    } catch {
      // taken: try another
    } finally {
      a.close()
    }
  }
}

const slow = skipUnderEmulator('speed')

describe.skipIf(slow)('record and replay the simulated vehicle', () => {
  it('onbus run, onbus record 3 s, onbus replay onto UDP', async () => {
    const port = freePair()
    const env = { ONBUS_SIM_LIDAR_PORT: String(port), ONBUS_IPC_DIR: ipcDir }
    const d = new CliProcess(['run', '--json'], env)
    procs.push(d)
    await d.waitFor((r) => r.event === 'ready')
    // Wait until LiDAR packets flow through the daemon to the modules.
    await d.waitFor((r) => r.event === 'module-output' && /planning: +[1-9]\d* frames\/s/.test(String(r.line)), 30_000)

    const file = join(dir, 'flight.mcap')
    const rec = await runCli(['record', '-o', file, '--duration', '3s', '--json', '-q'], env, 60_000)
    expect(rec.code, rec.stderr).toBe(0)
    const s = rec.json.at(-1) as unknown as { messages: number; dropped: number; topics: { topic: string; written: number; dropped: number }[] }
    expect(s.dropped).toBe(0)
    const lidar = s.topics.find((t) => t.topic === 'sensors/lidar')!
    // ~754 packets/s for ~3 s; generous for a loaded machine.
    expect(lidar.written).toBeGreaterThan(600)

    const readable = await FileReadable.open(file)
    const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers: await decompressHandlers() })
    const ch = [...reader.channelsById.values()].find((c) => c.topic === 'sensors/lidar')!
    expect(ch.metadata.get('onbus.type')).toBe('velodyne/vlp16')
    let n = 0
    for await (const m of reader.readMessages({ topics: ['sensors/lidar'] })) {
      n++
      expect(m.data.length).toBe(1206)
      // Link-fed: log_time is the kernel receive stamp, before the bus publish stamp.
      expect(m.logTime <= m.publishTime).toBe(true)
      expect(m.publishTime - m.logTime < 5_000_000_000n).toBe(true)
    }
    await readable.close()
    expect(n).toBe(lidar.written)

    // Replay the LiDAR packets onto UDP at 4×, as a bench rig feeds another program.
    const rx = createUdpLink({ address: '127.0.0.1', port: 0, rcvBuf: 8 << 20 })
    let got = 0
    let bad = 0
    rx.onBatch((b) => {
      for (let i = 0; i < b.length; i++) {
        got++
        if (b.view(i).length !== 1206) bad++
      }
    })
    const rp = await runCli(['replay', file, '--topics', 'sensors/lidar', '--no-bus', '--rate', '4', '--udp', `sensors/lidar=127.0.0.1:${rx.address().port}`, '--json'], env, 60_000)
    expect(rp.code, rp.stderr).toBe(0)
    const r = rp.json.at(-1) as unknown as { messages: number; reader: string }
    expect(r.messages).toBe(n)
    const deadline = Date.now() + 10_000
    while (got < n && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    rx.close()
    expect(got).toBe(n)
    expect(bad).toBe(0)
  }, 120_000)
})
