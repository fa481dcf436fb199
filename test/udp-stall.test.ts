// The property onbus exists for: a JavaScript stall does not lose datagrams
// that the configured buffers can hold, and what it loses beyond them is
// counted exactly.
import { describe, it, expect, afterEach } from 'vitest'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createUdpLink, type UdpLink } from '../lib/index.js'
import { skipUnderEmulator } from './helpers/emulator.js'

const sender = fileURLToPath(new URL('./children/paced-sender.mjs', import.meta.url))
const links: UdpLink[] = []
afterEach(() => {
  for (const l of links.splice(0)) l.close()
})

function runSender(port: number, rate: number, ms: number, size: number, tailDelay: number): Promise<{ sent: number; queued: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [sender, String(port), String(rate), String(ms), String(size), String(tailDelay)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`sender exited ${code}`))))
  })
}

/** Blocks this thread (as a GC pause or a long perception step would). */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function receiver(opts: Parameters<typeof createUdpLink>[0], onFirst: () => void) {
  const link = createUdpLink(opts)
  links.push(link)
  const seqs: number[] = []
  let blocked = false
  link.onBatch((b) => {
    for (let i = 0; i < b.length; i++) {
      seqs.push(b.dataView.getUint32(b.offset(i), true))
    }
    if (!blocked && seqs.length > 1000) {
      blocked = true
      onFirst()
    }
  })
  return { link, seqs }
}

describe('JavaScript stall at 50,000 datagrams/s of 64 B', () => {
  it.skipIf(skipUnderEmulator('speed'))('loses nothing when the ring and kernel buffer can hold the stall', async () => {
    let stalledMs = 0
    const { link, seqs } = receiver({ rxSlots: 32768, maxDatagramSize: 128, rcvBuf: 8 << 20 }, () => {
      const t = performance.now()
      block(200)
      stalledMs = performance.now() - t
    })
    const { sent } = await runSender(link.address().port, 50_000, 800, 64, 100)
    await new Promise((r) => setTimeout(r, 100))
    expect(stalledMs).toBeGreaterThanOrEqual(199)
    expect(sent).toBeGreaterThan(30_000)
    const s = link.stats()
    expect(s.kernelDrops).toBe(0)
    expect(s.onbusDrops).toBe(0)
    expect(seqs.length).toBe(sent)
    // In order, no gaps, no duplicates.
    for (let i = 0; i < seqs.length; i++) if (seqs[i] !== i) throw new Error(`gap or reorder at ${i}: ${seqs[i]}`)
  })

  it.skipIf(skipUnderEmulator('rxqOvfl'))('counts exactly what it loses when the buffers are too small', async () => {
    // A 256-slot ring and a minimal kernel buffer cannot hold 200 ms at 50k/s.
    const { link, seqs } = receiver({ rxSlots: 256, maxDatagramSize: 128, rcvBuf: 4096 }, () => block(200))
    const { sent } = await runSender(link.address().port, 50_000, 800, 64, 100)
    await new Promise((r) => setTimeout(r, 100))
    const s = link.stats()
    expect(s.rxPauses).toBeGreaterThan(0)
    expect(s.kernelDrops).toBeGreaterThan(1000)
    // Every datagram is either delivered or counted as dropped by the kernel.
    expect(seqs.length + s.kernelDrops).toBe(sent)
    // Delivered ones are in order, and the gaps add up to the drop count.
    let gaps = 0
    for (let i = 1; i < seqs.length; i++) {
      expect(seqs[i]).toBeGreaterThan(seqs[i - 1])
      gaps += seqs[i] - seqs[i - 1] - 1
    }
    gaps += seqs[0] + (sent - 1 - seqs[seqs.length - 1])
    expect(gaps).toBe(s.kernelDrops)
    expect(s.onbusDrops).toBe(0)
  })
})
